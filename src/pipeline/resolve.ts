import type { CategorySignal } from '../consent/merge.ts';
import type { ConsentResolver } from '../consent/resolve.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import type { ConsentSource } from '../consent/upstream/source.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';

/**
 * Step "resolve": the hit's consent from its own signals, merged with what is known elsewhere (a
 * cached upstream answer, or the answer a held event waited for). Decoding happens here
 * (src/consent/resolve.ts), never in the policy.
 */
export interface ConsentStep {
  /** The upstream's cached answer for the hit's visitor, if any (never asks). */
  cached(signals: RequestSignals): CategorySignal | undefined;
  /**
   * The consent to decide with. `requestConsent`, the hit's own consent resolved at its answer (for
   * the visitor cookie), is the same computation: reused unless another signal joins it.
   */
  resolve(event: Event, signals: RequestSignals, extra: CategorySignal | undefined, requestConsent?: ConsentState): ConsentState;
}

export function createConsentStep(deps: { resolver: ConsentResolver; upstream: ConsentSource | undefined; clock: Clock }): ConsentStep {
  const { resolver, upstream, clock } = deps;
  return {
    cached(signals) {
      const visitor = signals.visitor?.id;
      return upstream === undefined || visitor === undefined ? undefined : upstream.cached(visitor);
    },
    resolve(event, signals, extra, requestConsent) {
      if (extra === undefined && requestConsent !== undefined) return requestConsent;
      return resolver.fromRequest(event, signals, new Date(clock.now()), extra === undefined ? [] : [extra]);
    },
  };
}
