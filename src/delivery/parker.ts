/**
 * Parking: hands batches delivery cannot finish in this process to the outbox (outbox.ts), either
 * dead letters (`gave_up:<reason>`) or, while shutting down, work to resume after the restart
 * (`shutdown`). Counts the park calls still in flight (a flush or close waits for them) and keeps
 * the outbox's refusals, which make the flush or close reject: an event the outbox refused is
 * reported `outbox_park_failed`, never dropped silently.
 */
import type { Outbox, OutboxEntry, OutboxReason } from './outbox.ts';
import type { DeliveryResult, LastExchange } from './result.ts';
import { asError, errorCodeOf, UnavailableError } from '../errors.ts';

export interface ParkerOptions {
  outbox: Outbox;
  /** Receives the parked (shutdown) or outbox_park_failed results; must not throw. */
  report: (result: DeliveryResult) => void;
  /** Called after a park call settled and its events were released. */
  onSettled: () => void;
}

export interface Parker {
  /**
   * Parks the entries in one outbox call. Once it settles, reports each entry (`parked` for a
   * shutdown, `failed` with `outbox_park_failed` when refused; a dead letter was reported when it
   * gave up) and calls `settle` with its event count. `last`: the exchange a shutdown follows.
   */
  park(entries: OutboxEntry[], reason: OutboxReason, settle: (count: number) => void, last?: LastExchange): void;
  /** Park calls not settled yet. */
  readonly inFlight: number;
  /** The outbox's refusals since the last call, oldest first. */
  takeErrors(): unknown[];
}

export function createParker(options: ParkerOptions): Parker {
  const { outbox, report, onSettled } = options;
  let inFlight = 0;
  let errors: unknown[] = [];

  function done(entries: OutboxEntry[], reason: OutboxReason, settle: (count: number) => void, ok: boolean, last: LastExchange | undefined): void {
    for (const entry of entries) {
      if (ok && reason === 'shutdown') {
        const result: DeliveryResult = { destinationId: entry.destinationId, messageIds: entry.messageIds, outcome: 'parked', attempt: entry.attempts, reason, durationMs: last?.durationMs ?? 0 };
        if (last?.status !== undefined) result.status = last.status;
        report(result);
      } else if (!ok) {
        report({ destinationId: entry.destinationId, messageIds: entry.messageIds, outcome: 'failed', attempt: entry.attempts, reason: 'outbox_park_failed', error: errorCodeOf(UnavailableError), durationMs: 0 });
      }
      settle(entry.messageIds.length);
    }
    inFlight -= 1;
    onSettled();
  }

  return {
    park(entries, reason, settle, last) {
      if (entries.length === 0) return;
      inFlight += 1;
      let parking: Promise<void>;
      try {
        parking = outbox.park(entries);
      } catch (err) {
        parking = Promise.reject(asError(err));
      }
      parking
        .then(
          () => done(entries, reason, settle, true, last),
          (err: unknown) => {
            errors.push(err);
            done(entries, reason, settle, false, last);
          },
        )
        .catch(() => {
          // done() only reports and counts, and report() must not throw: nothing reaches here.
        });
    },
    get inFlight() {
      return inFlight;
    },
    takeErrors() {
      const taken = errors;
      errors = [];
      return taken;
    },
  };
}
