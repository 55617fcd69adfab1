import type { CategorySignal } from '../merge.ts';
import { isVerifyFailure, type UpstreamReadiness, type VerifyClient } from './verify-client.ts';
import type { VerifyAnswer } from './verify-response.ts';

/**
 * Consent the hit does not carry, looked up per visitor (step 3 of DESIGN.md "Consent
 * resolution"), as the pipeline sees it: a synchronous cache read and an asynchronous lookup, both
 * giving category signals to merge with the request's. A failure is a reason, never consent.
 */
export interface ConsentSource {
  /** A cached answer as a signal; `undefined` is a miss (never consent). */
  cached(visitorId: string): CategorySignal | undefined;
  /**
   * Resolves to the answer as a signal, or the failure's reason (with the time a new lookup may get
   * further, when the source knows it). Never rejects.
   */
  lookup(visitorId: string): Promise<LookupOutcome>;
  /**
   * When a lookup may next reach the upstream (src/consent/upstream/verify-client.ts `readiness`).
   * Absent: the source cannot say, and held events do not wait for it.
   */
  readiness?(): UpstreamReadiness;
  /** A local consent change for this visitor: forget what the upstream said. */
  invalidate(visitorId: string): void;
  close(): Promise<void>;
}

export type LookupOutcome = { signal: CategorySignal } | { failure: string; retryAt?: number };

/**
 * The upstream's answer as a signal dated by its `consentedAt`. "No consent found" is a signal that
 * covers no category (they stay unknown; source `upstream:none`). An answer without a usable date sorts as the oldest, so
 * any dated signal in the hit wins over it.
 */
export function answerSignal(answer: VerifyAnswer): CategorySignal {
  const at = answer.consentedAt === undefined ? Number.NaN : Date.parse(answer.consentedAt);
  return answer.found ? { source: 'upstream', at, categories: answer.categories } : { source: 'upstream:none', at, categories: {} };
}

export function verifySource(client: VerifyClient): ConsentSource {
  return {
    cached(visitorId) {
      const answer = client.cached(visitorId);
      return answer === undefined ? undefined : answerSignal(answer);
    },
    async lookup(visitorId) {
      const result = await client.lookup(visitorId);
      if (!isVerifyFailure(result)) return { signal: answerSignal(result) };
      return result.retryAt === undefined ? { failure: `upstream_${result.failed}` } : { failure: `upstream_${result.failed}`, retryAt: result.retryAt };
    },
    readiness: () => client.readiness(),
    invalidate: (visitorId) => client.invalidate(visitorId),
    close: () => client.close(),
  };
}
