import { createPendingQueue, type PendingQueue } from '../consent/pending.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ReceiptSink } from '../receipts/receipt.ts';
import { countUnresolved } from './outcomes.ts';
import type { HeldEvent } from './types.ts';

/**
 * The pending queue of held events (config `hold`), expiring them at their deadlines on the clock
 * of the upstream's waits. An expired event is final: counted as `consent_unresolved` (with its
 * receipt) and settled, so the journal lets its hit go.
 */
export function createHeldQueue(deps: {
  hold: { maxEvents: number; maxBytes?: number | undefined; maxAgeMs: number };
  clock: Clock;
  metrics: Pick<Metrics, 'decisions' | 'heldEvents' | 'holdsStarted'>;
  settle: (event: Event, destinationId: string) => void;
  /** Decision receipts (absent: off): an expired hold's final receipt is `unresolved`. */
  receipts?: ReceiptSink | undefined;
}): PendingQueue<HeldEvent> {
  const { receipts } = deps;
  return createPendingQueue<HeldEvent>({
    maxItems: deps.hold.maxEvents,
    ...(deps.hold.maxBytes === undefined ? {} : { maxBytes: deps.hold.maxBytes }),
    maxAgeMs: deps.hold.maxAgeMs,
    clock: deps.clock,
    onExpire: (h) => {
      countUnresolved(deps.metrics, h, receipts === undefined ? undefined : { sink: receipts, now: deps.clock.now() });
      for (const id of h.destinationIds) deps.settle(h.event, id);
    },
  });
}
