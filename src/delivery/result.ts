/**
 * What delivery reports about a batch (DeliveryOptions.onResult). Every batch ends in exactly one
 * final outcome (delivered, failed, dropped or parked); retry_scheduled is reported along the way.
 * Results never carry a URL or an error message, since either can hold a secret: a failure carries
 * its error's code instead (src/errors.ts, docs/errors.md).
 */
import type { ErrorCode } from '../errors.ts';

export type DeliveryOutcomeKind = 'delivered' | 'retry_scheduled' | 'failed' | 'dropped' | 'parked';

/** A failure carries its error's code; the other outcomes carry none. */
export type DeliveryResult = DeliveryResultFields &
  ({ outcome: 'failed' | 'retry_scheduled'; error: ErrorCode } | { outcome: 'delivered' | 'dropped' | 'parked'; error?: undefined });

interface DeliveryResultFields {
  destinationId: string;
  messageIds: string[];
  outcome: DeliveryOutcomeKind;
  /** HTTP status of the attempt this result is about, when a response arrived. */
  status?: number;
  /** Attempts made so far for this batch (0 when it never left). */
  attempt: number;
  /** Stable reason: a retry policy reason, a refusal or drop reason, or `shutdown`. */
  reason?: string;
  /**
   * On `failed` and `retry_scheduled`, always: the error family's code and retry flag
   * (TW_ERR_DELIVERY_REJECTED, TW_ERR_DELIVERY_RETRYABLE, or for a batch that never reached the
   * vendor TW_ERR_UNAVAILABLE, TW_ERR_RENDER, TW_ERR_TEMPLATE, TW_ERR_INTERNAL). A deliberate drop
   * (`dropped`, a consent revocation) and a shutdown park are not errors and carry none.
   */
  error?: ErrorCode | undefined;
  /** Duration of the HTTP exchange this result is about; 0 when there was none. */
  durationMs: number;
  /** For retry_scheduled: the wait before the next attempt. */
  retryInMs?: number;
  /** Start of the vendor's response body, secrets masked, for diagnostics. */
  responseExcerpt?: string;
}

/** The HTTP exchange a final result is about, when it follows one (a batch parked after its attempt). */
export interface LastExchange {
  status?: number | undefined;
  durationMs: number;
}
