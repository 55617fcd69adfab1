/**
 * The outbox seam: where a batch goes when delivery cannot finish it in this process, either
 * because the retry policy gave up (a dead letter, kept with its reason) or because the process
 * is shutting down (to be resent after a restart). The durable, store-backed outbox implements
 * the same interface later; the in-memory one serves tests and the first version.
 */
import type { VendorRequest } from '../destinations/types.ts';

export type OutboxReason = 'shutdown' | `gave_up:${string}`;

export interface OutboxEntry {
  destinationId: string;
  messageIds: string[];
  /**
   * The request as built, URL and headers included. It may carry secrets (an access token in the
   * query string): a durable outbox must store it as carefully as the configuration's secrets.
   */
  request: VendorRequest;
  reason: OutboxReason;
  /** A dead letter's error code (TW_ERR_*, docs/errors.md), as its `failed` result carried it. */
  code?: string;
  /** Attempts already made (0 when the batch never left). */
  attempts: number;
  /** When the first attempt started; absent when none was made. */
  firstAttemptAt?: number;
  /**
   * Earliest time a resend may start: a retry that was waiting (on Retry-After or backoff) when
   * it was parked keeps its wait across a restart, so a Retry-After is never shortened.
   */
  notBefore?: number;
  parkedAt: number;
}

export interface Outbox {
  park(entries: OutboxEntry[]): Promise<void>;
}

export interface MemoryOutbox extends Outbox {
  /** Everything parked so far, oldest first. */
  readonly entries: OutboxEntry[];
}

export function createMemoryOutbox(): MemoryOutbox {
  const entries: OutboxEntry[] = [];
  return {
    entries,
    park(batch) {
      entries.push(...batch);
      return Promise.resolve();
    },
  };
}
