import type { Event } from '../ingest/event.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';

/**
 * Which event × destination pairs are held now. A held pair is decided again when its consent may
 * have changed (the store's or the upstream's answer, a change pushed through the API, a full
 * delivery queue tried again) and may be held again then; it is counted as a hold once, when the
 * hold begins (`tagwarden_holds_started_total`), is in `tagwarden_held_events` until its final
 * decision, and that decision alone is in `tagwarden_decisions_total` (docs/monitoring.md, "Counts
 * that add up").
 */
export interface HeldCount {
  /** The pair waits (again): counted as a hold begun unless it is held already. True when the hold began now. */
  hold(event: Event, destinationId: string, reason: string): boolean;
  /** The pair's final decision was counted: it is held no more (nothing when it was not held). */
  done(event: Event, destinationId: string): void;
}

/** One per metrics instance, so the pipeline, the pending queue's expiry and the shutdown mark the same pairs. */
const perMetrics = new WeakMap<object, HeldCount>();

export function heldCount(metrics: Pick<Metrics, 'heldEvents' | 'holdsStarted'>): HeldCount {
  let count = perMetrics.get(metrics.heldEvents);
  if (count === undefined) perMetrics.set(metrics.heldEvents, (count = createHeldCount(metrics)));
  return count;
}

function createHeldCount(metrics: Pick<Metrics, 'heldEvents' | 'holdsStarted'>): HeldCount {
  // Keyed by the event object: a held pair is decided again with the event it was held with (the
  // pending queue and the journal's requeue keep it), and a duplicate messageId is another event.
  const held = new WeakMap<Event, Set<string>>();
  /** Pairs held: at 0, a final decision (the per-hit path) skips the lookup. */
  let live = 0;
  const started = incrementer(metrics.holdsStarted, ['destination', 'reason']);
  const gauges = new Map<string, { inc(): void; dec(): void }>();
  const gauge = (destination: string): { inc(): void; dec(): void } => {
    let g = gauges.get(destination);
    if (g === undefined) gauges.set(destination, (g = metrics.heldEvents.labels({ destination })));
    return g;
  };
  return {
    hold(event, destinationId, reason) {
      let ids = held.get(event);
      if (ids === undefined) held.set(event, (ids = new Set()));
      if (ids.has(destinationId)) return false;
      ids.add(destinationId);
      live++;
      gauge(destinationId).inc();
      started([destinationId, reason]);
      return true;
    },
    done(event, destinationId) {
      if (live === 0) return;
      const ids = held.get(event);
      if (ids === undefined || !ids.delete(destinationId)) return;
      if (ids.size === 0) held.delete(event);
      live--;
      gauge(destinationId).dec();
    },
  };
}
