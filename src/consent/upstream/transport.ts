/**
 * One GET to the upstream verify API over the one outbound sender (src/lib/http/send.ts), and
 * what it produced, before the gates judge it (./admission.ts): an answer read from a 200
 * (./verify-response.ts), a malformed body, another status with its Retry-After, a timeout, a
 * network error, or `closed` when `abortAll` cut it (shutdown).
 *
 * The request timer runs on the client's clock. A 200's body is read up to `maxBodyBytes` (a
 * declared or actual longer one is malformed, never parsed); JSON is UTF-8 (RFC 8259 §8.1), so
 * invalid bytes make the body malformed rather than U+FFFD. Redirects are never followed: the API
 * does not redirect, and a 3xx is a status like any other.
 */
import { send } from '../../lib/http/send.ts';
import { interpretVerifyBody, type VerifyAnswer } from './verify-response.ts';
import type { VerifySettings } from './verify-options.ts';

/** What one exchange produced. */
export type Exchange =
  | { kind: 'answer'; answer: VerifyAnswer }
  | { kind: 'malformed' }
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'timeout' }
  | { kind: 'network' }
  | { kind: 'closed' };

/**
 * The checked settings the transport reads (./verify-options.ts): the dispatcher (owned by the
 * caller: nothing here closes it), the URL builder, the key and its header, the category map, the
 * request timeout, the body bound and the clock.
 */
export type VerifyTransportOptions = Pick<VerifySettings, 'dispatcher' | 'url' | 'apiKeyHeader' | 'apiKey' | 'categoryMap' | 'timeoutMs' | 'maxBodyBytes' | 'clock'>;

export interface VerifyTransport {
  exchange(visitorId: string): Promise<Exchange>;
  /** Requests on the wire now. */
  readonly inFlight: number;
  /** Cuts every request on the wire; each ends as `closed`. */
  abortAll(): void;
}

export function createVerifyTransport(o: VerifyTransportOptions): VerifyTransport {
  const headers: Record<string, string> = { [o.apiKeyHeader.toLowerCase()]: o.apiKey, accept: 'application/json' };
  const controllers = new Set<AbortController>();

  async function exchange(visitorId: string): Promise<Exchange> {
    const controller = new AbortController();
    controllers.add(controller);
    try {
      const sent = await send(
        o.dispatcher,
        { method: 'GET', url: o.url(visitorId), headers },
        { timeoutMs: o.timeoutMs, signal: controller.signal, clock: o.clock, maxResponseBytes: o.maxBodyBytes, keepBody: true, secretValues: [o.apiKey] },
      );
      if (controller.signal.aborted) return { kind: 'closed' };
      const outcome = sent.outcome;
      if (outcome.kind !== 'response') return { kind: outcome.kind };
      // Only the status and Retry-After of any other answer matter.
      if (outcome.status !== 200) return outcome.retryAfter === undefined ? { kind: 'status', status: outcome.status } : { kind: 'status', status: outcome.status, retryAfter: outcome.retryAfter };
      // A 200 whose body did not arrive whole is the failure that cut it, not a body to parse.
      if (sent.interrupted !== undefined) return { kind: sent.interrupted === 'timeout' ? 'timeout' : 'network' };
      if (sent.truncated || sent.body === undefined) return { kind: 'malformed' };
      const text = decodeUtf8(sent.body);
      const answer = text === undefined ? undefined : interpretVerifyBody(text, o.categoryMap, o.clock.now());
      return answer === undefined ? { kind: 'malformed' } : { kind: 'answer', answer };
    } finally {
      controllers.delete(controller);
    }
  }

  return {
    exchange,
    get inFlight() {
      return controllers.size;
    },
    abortAll() {
      for (const c of controllers) c.abort();
    },
  };
}

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
