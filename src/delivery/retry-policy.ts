/**
 * The delivery retry policy: a pure function from "what happened on attempt N" to "deliver,
 * retry after D ms, or give up (and why)". No I/O, no clock, no randomness of its own: the
 * caller passes `now` and `random`, so every decision is reproducible in a test.
 */
import { fullJitterBackoffMs } from '../lib/backoff.ts';
import { parseRetryAfter } from '../lib/retry-after.ts';
import { AuthRejectedError, AuthRetryableError, DeliveryRejectedError, DeliveryRetryableError, errorCodeOf, type ErrorCode } from '../errors.ts';
import type { RetrySafeFailure } from '../destinations/types.ts';

import type { SendOutcome } from '../lib/http/send.ts';

/**
 * A template's auth step (src/delivery/oauth2.ts) could not get an access token, so the vendor
 * request never left. `reason` is a fixed label (`auth_invalid_grant`, `auth_status_503`, …),
 * never text from the token endpoint beyond its RFC 6749 error code.
 */
export interface AuthOutcome {
  kind: 'auth';
  retryable: boolean;
  reason: string;
}

/** What one attempt produced: as the outbound sender (src/lib/http/send.ts) reports it, or an auth failure before it. */
export type AttemptOutcome = SendOutcome | AuthOutcome;

export interface RetryPolicy {
  /** Most attempts in total, the first one included. */
  maxAttempts: number;
  /** Longest time from the first attempt to the start of the last retry. */
  maxTotalMs: number;
  /** Backoff cap for the first retry; doubles on every further attempt. */
  baseDelayMs: number;
  /** Ceiling for the computed backoff (a Retry-After may still ask for longer). */
  maxDelayMs: number;
}

export interface RetryInput {
  /** Attempts made so far, 1-based (1 after the first attempt). */
  attempt: number;
  firstAttemptAt: number;
  now: number;
  method: string;
  /** The template declares an idempotency key, so the vendor deduplicates a repeated request. */
  idempotent: boolean;
  /**
   * For a request that is neither idempotent nor keyed: the failures after which the template
   * says a resend is still safe (`request.retrySafe`). Refusals and never-sent requests are
   * retried without it.
   */
  retrySafe: ReadonlySet<RetrySafeFailure>;
  outcome: AttemptOutcome;
  policy: RetryPolicy;
  /** Uniform in [0, 1); injected for the jitter. */
  random: () => number;
}

/**
 * `retryAfterMs`: the wait the answer's `Retry-After` asked for, when it had a valid one (on a
 * give-up too: the vendor's window holds for the destination's other requests, see pause.ts).
 * `error`: how the attempt failed, as the operator matches it (docs/errors.md):
 * TW_ERR_DELIVERY_REJECTED when the vendor refused for good, TW_ERR_DELIVERY_RETRYABLE otherwise,
 * also on a give-up that ran out of attempts or time (a replay may still succeed).
 */
export type RetryDecision =
  | { action: 'success' }
  | { action: 'retry'; delayMs: number; reason: string; error: ErrorCode; retryAfterMs?: number }
  | { action: 'give_up'; reason: string; error: ErrorCode; retryAfterMs?: number };

const RETRYABLE = errorCodeOf(DeliveryRetryableError);
const REJECTED = errorCodeOf(DeliveryRejectedError);
const AUTH_RETRYABLE = errorCodeOf(AuthRetryableError);
const AUTH_REJECTED = errorCodeOf(AuthRejectedError);


/**
 * How an attempt that is worth repeating failed, for the idempotency check: `refused` and
 * `never_sent` mean the vendor did not process the request, so any request may be repeated;
 * the rest are the ambiguous failures a template may declare safe.
 */
export type FailureClass = 'refused' | 'never_sent' | RetrySafeFailure;

/**
 * Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2,
 * https://www.rfc-editor.org/rfc/rfc9110#section-9.2.2). POST is not among them.
 */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotentMethod(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase());
}

/**
 * Statuses worth repeating: 408 Request Timeout and 429 Too Many Requests, and server errors
 * except 501 Not Implemented and 505 HTTP Version Not Supported, which will answer the same way
 * however often we ask.
 */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

/**
 * Network errors raised before a request is written: DNS failures (getaddrinfo ENOTFOUND,
 * EAI_AGAIN) and connect(2) failures (ECONNREFUSED, ENETUNREACH, EHOSTUNREACH). A reset or a
 * timeout may come after the vendor read the request, so they are not here.
 * https://nodejs.org/api/errors.html#common-system-errors
 */
export const NEVER_SENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

/**
 * Classifies a failed attempt that is worth repeating (the caller has ruled out success and
 * permanent answers).
 * - 429 Too Many Requests: the server refuses because of the sender's rate
 *   (RFC 6585 §4, https://www.rfc-editor.org/rfc/rfc6585#section-4);
 * - 408 Request Timeout: the server did not receive a complete request
 *   (RFC 9110 §15.5.9, https://www.rfc-editor.org/rfc/rfc9110#section-15.5.9);
 * - 503 with a Retry-After: the server is unable to handle the request and says when it will be
 *   (RFC 9110 §15.6.4, https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4). A bare 503, like
 *   any 5xx, may come from a gateway after the origin did the work, so it stays ambiguous.
 */
export function classifyFailure(outcome: AttemptOutcome, retryAfterMs: number | undefined): FailureClass {
  switch (outcome.kind) {
    case 'response':
      if (outcome.status === 429 || outcome.status === 408) return 'refused';
      if (outcome.status === 503 && retryAfterMs !== undefined) return 'refused';
      return isRetryableStatus(outcome.status) ? 'status_5xx' : 'status_transient';
    case 'network':
      // A failed name lookup or connect means no byte of the request reached the vendor.
      return outcome.code !== undefined && NEVER_SENT_CODES.has(outcome.code) ? 'never_sent' : 'network';
    case 'timeout':
      return 'timeout';
    case 'auth':
      // No token, no request: the vendor saw nothing.
      return 'never_sent';
  }
}

/** Whether a failure of this class may be repeated for this request (see classifyFailure). */
function safeToRepeat(input: RetryInput, failure: FailureClass): boolean {
  if (failure === 'refused' || failure === 'never_sent') return true;
  if (isIdempotentMethod(input.method) || input.idempotent) return true;
  return input.retrySafe.has(failure);
}

export function decideRetry(input: RetryInput): RetryDecision {
  const { outcome, policy } = input;
  let reason: string;
  let retryAfterHeader: string | undefined;
  switch (outcome.kind) {
    case 'response': {
      if (outcome.status >= 200 && outcome.status <= 299) {
        // A 2xx whose body names a failure (the template's successCode, e.g. TikTok's `code`).
        if (outcome.rejected === undefined) return { action: 'success' };
        if (outcome.rejected === 'final') return { action: 'give_up', reason: `status_${outcome.status}_rejected`, error: REJECTED };
        reason = `status_${outcome.status}_transient`;
        retryAfterHeader = outcome.retryAfter;
        break;
      }
      // 3xx included: vendor endpoints do not redirect, and we never follow redirects with a
      // body that may carry secrets.
      const retryable = isRetryableStatus(outcome.status);
      if (!retryable && outcome.transient !== true) return { action: 'give_up', reason: `status_${outcome.status}`, error: REJECTED };
      reason = retryable ? `status_${outcome.status}` : `status_${outcome.status}_transient`;
      retryAfterHeader = outcome.retryAfter;
      break;
    }
    case 'network':
      reason = outcome.code === undefined || outcome.code === '' ? 'network' : `network_${outcome.code}`;
      break;
    case 'timeout':
      reason = 'timeout';
      break;
    case 'auth':
      if (!outcome.retryable) return { action: 'give_up', reason: outcome.reason, error: AUTH_REJECTED };
      reason = outcome.reason;
      break;
  }
  const failedCode = outcome.kind === 'auth' ? AUTH_RETRYABLE : RETRYABLE;

  const retryAfterMs = retryAfterHeader === undefined ? undefined : parseRetryAfter(retryAfterHeader, input.now);
  const giveUp = (why: string): RetryDecision =>
    retryAfterMs === undefined ? { action: 'give_up', reason: why, error: failedCode } : { action: 'give_up', reason: why, error: failedCode, retryAfterMs };
  // A non-idempotent request may have been processed even though we saw no answer; repeating it
  // without a key the vendor deduplicates on could double-count, unless the vendor refused it, it
  // never left, or the template says its vendor takes a repeat after this kind of failure.
  if (!safeToRepeat(input, classifyFailure(outcome, retryAfterMs))) return giveUp('not_idempotent');
  if (input.attempt >= policy.maxAttempts) return giveUp('max_attempts');

  const deadline = input.firstAttemptAt + policy.maxTotalMs;
  if (input.now >= deadline) return giveUp('max_total_time');

  // The server told us when it will be ready; retrying earlier only earns another refusal, so
  // rather than shorten its wait we give up and let the event be parked.
  if (retryAfterMs !== undefined && input.now + retryAfterMs > deadline) return giveUp('retry_after_beyond_deadline');

  const delayMs = Math.max(retryAfterMs ?? 0, fullJitterBackoffMs(Math.max(1, input.attempt), { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs }, input.random));
  if (input.now + delayMs > deadline) return giveUp('max_total_time');
  return retryAfterMs === undefined
    ? { action: 'retry', delayMs, reason, error: failedCode }
    : { action: 'retry', delayMs, reason, error: failedCode, retryAfterMs };
}
