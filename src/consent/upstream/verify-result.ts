/**
 * What a verify lookup gives back (src/consent/upstream/verify-client.ts): an answer from a 200, or
 * a failure with its reason. Failures are values, never exceptions, and never consent: the
 * resolver reads every one of them as "unresolved".
 */
import type { VerifyAnswer } from './verify-response.ts';

export type VerifyFailureReason =
  /** The upstream asked us to wait (429 / 503 with Retry-After) or its probe is out. */
  | 'rate_limited'
  /** Our own request budget has no room in the current 60 s window; no call made. */
  | 'budget_exhausted'
  /** The fleet's budget (in the store) could not be read: no call made (fail closed). */
  | 'budget_unavailable'
  /** `maxConcurrent` requests are out and `maxWaiting` lookups already wait for a slot; no call made. */
  | 'overloaded'
  | 'circuit_open'
  /** Backing off after a 5xx, timeout or network error (or the probe after it is out). */
  | 'backing_off'
  | 'timeout'
  | 'network'
  /** Any status but 200 (a 429 reads as rate_limited). */
  | 'http_error'
  /** A 200 whose body is too large, not UTF-8, not JSON or not the documented shape. */
  | 'malformed'
  /** The answer was fetched before a local consent change: not cached, re-resolve. */
  | 'superseded'
  /** Empty or over-long visitor id: no call made. */
  | 'invalid_visitor'
  /** The client was closed. */
  | 'closed';

export interface VerifyFailure {
  readonly failed: VerifyFailureReason;
  /**
   * The earliest time a new lookup may get further, when known: for fast-fail reasons, and for a
   * call that set a wait (a 5xx, a timeout, a network error: the backoff or the 503's
   * Retry-After). Absent after a 4xx or a malformed body: the upstream answered and asked for no wait.
   */
  readonly retryAt?: number;
}

export type VerifyResult = VerifyAnswer | VerifyFailure;

export function isVerifyFailure(r: VerifyResult): r is VerifyFailure {
  return 'failed' in r;
}

export function fail(failed: VerifyFailureReason, retryAt?: number): VerifyFailure {
  return retryAt === undefined ? { failed } : { failed, retryAt };
}

/**
 * When the upstream may next be called, as the client's own gates see it (Retry-After or
 * backoff, circuit breaker, request budget), for callers that keep work waiting for it (held
 * events, src/consent/held-retry.ts) instead of deriving the window again.
 */
export interface UpstreamReadiness {
  /**
   * Earliest time a call may go out (`now` or earlier: now). Undefined while a probe is out (after
   * a Retry-After or backoff, or in a half-open circuit): nobody knows until it answers.
   */
  readonly readyAt: number | undefined;
  /** The next call that goes out is that single probe. */
  readonly probe: boolean;
  /** Calls the request budget would grant now (read it again at `readyAt` when that is later). */
  readonly room: number;
}
