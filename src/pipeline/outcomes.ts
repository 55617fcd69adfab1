import { requestIdOf } from '../observability/request-id.ts';
import type { Logger } from 'pino';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import { createRateLimitedLog } from '../observability/rate-limited-log.ts';
import { recentDecisions } from '../observability/recent-decisions.ts';
import { buildReceipt, type ReceiptSink } from '../receipts/receipt.ts';
import { heldCount } from './held-count.ts';
import type { HeldEvent } from './types.ts';

/** Policy drops logged per destination and reason within each interval (the rest are counted on the next line). */
const DROP_LOG_LINES = 10;
const DROP_LOG_INTERVAL_MS = 60_000;

/**
 * A final decision, counted once per event × destination: sent (`forward`, `redact`), not sent by
 * the policy, the template or a vendor rule (`drop`), or not sent because it could not be (`failed`:
 * the template could not render it, the delivery queue refused it). A hold is not final.
 */
export type FinalOutcome = 'forward' | 'redact' | 'drop' | 'failed';

/**
 * How every destination's outcome is recorded: counted, listed in the dashboard's recent decisions
 * (src/observability/recent-decisions.ts, with the visitor id when the caller knows it), logged when
 * dropped, settled for the journal.
 */
export interface Outcomes {
  /** `tagwarden_decisions_total{destination, outcome, reason}`; ends the event's hold for the destination, if any. */
  count(destinationId: string, outcome: FinalOutcome, reason: string, event: Event, visitorId?: string): void;
  /** The event waits for the destination (pending queue, or journal requeue): a hold begun, unless it is held already. */
  hold(destinationId: string, reason: string, event: Event, visitorId?: string): void;
  /** A drop: counted, logged (rate-limited) and settled. */
  drop(destinationId: string, reason: string, event: Event, visitorId?: string): void;
  /** Consent could not be resolved for these destinations: each is dropped as `consent_unresolved`. */
  unresolved(event: Event, destinationIds: Iterable<string>, visitorId?: string): void;
  /** A template failed to render: logged at warn, rate-limited like the drops. */
  renderError(destinationId: string, event: Event, err: Error): void;
  /** The destination is done with the event without the delivery (the journal may finish the hit). */
  settle(event: Event, destinationId: string): void;
}

export function createOutcomes(deps: { metrics: Metrics; log: Logger; clock: Clock; settle?: ((event: Event, destinationId: string) => void) | undefined }): Outcomes {
  const decisions = incrementer(deps.metrics.decisions, ['destination', 'outcome', 'reason']);
  const held = heldCount(deps.metrics);
  const recent = recentDecisions(deps.metrics);
  const settle = deps.settle ?? ((): void => undefined);
  // A policy drop is Tagwarden doing what the consent and the config say, not a fault: logged at
  // info, rate-limited per destination and reason (docs/policy.md), with no event data.
  const dropLog = createRateLimitedLog({ log: deps.log, maxPerInterval: DROP_LOG_LINES, intervalMs: DROP_LOG_INTERVAL_MS, clock: deps.clock });

  function count(destination: string, outcome: FinalOutcome, reason: string, event: Event, visitorId?: string): void {
    decisions([destination, outcome, reason]);
    recent.record(destination, outcome, reason, event, visitorId);
    held.done(event, destination);
  }
  function drop(destination: string, reason: string, event: Event, visitorId?: string): void {
    count(destination, 'drop', reason, event, visitorId);
    dropLog('info', `${destination}\u0000${reason}`, { requestId: requestIdOf(event), destination, reason, messageId: event.messageId }, 'event dropped by policy');
    settle(event, destination);
  }
  return {
    count,
    hold(destination, reason, event, visitorId) {
      if (held.hold(event, destination, reason)) recent.record(destination, 'hold', reason, event, visitorId);
    },
    drop,
    unresolved(event, destinationIds, visitorId) {
      for (const id of destinationIds) drop(id, 'consent_unresolved', event, visitorId);
    },
    renderError(destination, event, err) {
      // A site sending the same incomplete hit must not flood the log.
      dropLog('warn', `${destination}\u0000render_error`, { requestId: requestIdOf(event), destination, messageId: event.messageId, err: err.message }, 'render failed');
    },
    settle,
  };
}

/**
 * A held event that expired, or is still held at a shutdown without a journal: counted as a
 * `consent_unresolved` drop (never forwarded, not logged: the count says it), its hold ended, and
 * with receipts on, its final receipt (phase `unresolved`) recorded at `now`.
 */
export function countUnresolved(metrics: Pick<Metrics, 'decisions' | 'heldEvents' | 'holdsStarted'>, held: HeldEvent, receipts?: { sink: ReceiptSink; now: number }): void {
  const count = heldCount(metrics);
  const recent = recentDecisions(metrics);
  for (const id of held.destinationIds) {
    metrics.decisions.inc({ destination: id, outcome: 'drop', reason: 'consent_unresolved' });
    recent.record(id, 'drop', 'consent_unresolved', held.event, held.signals.visitor?.id);
    count.done(held.event, id);
    receipts?.sink.record(buildReceipt(held.event, held.signals, id, UNRESOLVED, undefined, undefined, receipts.now));
  }
}

const UNRESOLVED = Object.freeze({ outcome: 'drop', reason: 'consent_unresolved' });
