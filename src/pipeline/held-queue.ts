import { createPendingQueue, type PendingQueue } from '../consent/pending.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';
import { requestIdOf } from '../observability/request-id.ts';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { createRateLimitedLog } from '../observability/rate-limited-log.ts';
import type { ReceiptSink } from '../receipts/receipt.ts';
import { countUnresolved } from './outcomes.ts';
import type { HeldEvent } from './types.ts';

/**
 * The pending queue of held events (config `hold`), expiring them at their deadlines on the clock
 * of the upstream's waits. An expired event is final: counted as `consent_unresolved` (with its
 * receipt) and settled, so the journal lets its hit go. With `log`, each expiry is logged at info
 * (`held event expired`, reason `consent_unresolved`), rate-limited per destination like the policy drops.
 */
export function createHeldQueue(deps: {
  hold: { maxEvents: number; maxBytes?: number | undefined; maxAgeMs: number };
  clock: Clock;
  metrics: Pick<Metrics, 'decisions' | 'heldEvents' | 'holdsStarted'>;
  settle: (event: Event, destinationId: string) => void;
  log?: Logger;
  /** Told of each expired event after it is counted (a preview's stream shows the drop); absent: nobody. */
  expired?: ((held: HeldEvent) => void) | undefined;
  /** Decision receipts (absent: off): an expired hold's final receipt is `unresolved`. */
  receipts?: ReceiptSink | undefined;
}): PendingQueue<HeldEvent> {
  const { log, receipts } = deps;
  const expired = log === undefined ? undefined : createRateLimitedLog({ log, maxPerInterval: 10, intervalMs: 60_000, clock: deps.clock });
  return createPendingQueue<HeldEvent>({
    maxItems: deps.hold.maxEvents,
    ...(deps.hold.maxBytes === undefined ? {} : { maxBytes: deps.hold.maxBytes }),
    maxAgeMs: deps.hold.maxAgeMs,
    clock: deps.clock,
    onExpire: (h) => {
      countUnresolved(deps.metrics, h, receipts === undefined ? undefined : { sink: receipts, now: deps.clock.now() });
      for (const id of h.destinationIds) {
        expired?.('info', `${id}\u0000consent_unresolved`, { requestId: requestIdOf(h.event), destination: id, reason: 'consent_unresolved', messageId: h.event.messageId }, 'held event expired');
        deps.settle(h.event, id);
      }
      deps.expired?.(h);
    },
  });
}
