/**
 * What delivery reports about a batch (DeliveryOptions.onResult). Every batch ends in exactly one
 * final outcome (delivered, failed, dropped or parked); retry_scheduled is reported along the way.
 * Results never carry a URL or an error message, since either can hold a secret.
 */
export type DeliveryOutcomeKind = 'delivered' | 'retry_scheduled' | 'failed' | 'dropped' | 'parked';

export interface DeliveryResult {
  destinationId: string;
  messageIds: string[];
  outcome: DeliveryOutcomeKind;
  /** HTTP status of the attempt this result is about, when a response arrived. */
  status?: number;
  /** Attempts made so far for this batch (0 when it never left). */
  attempt: number;
  /** Stable reason: a retry policy reason, a refusal or drop reason, or `shutdown`. */
  reason?: string;
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
