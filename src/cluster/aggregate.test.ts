import { describe, expect, it } from 'vitest';
import { createMetrics } from '../observability/metrics.ts';
import { aggregateMetrics } from './aggregate.ts';
import type { MetricsJson } from './messages.ts';

/** One worker's metrics as it would answer `collect`. */
async function worker(received: number, queued: number, ready: boolean, held: number): Promise<MetricsJson> {
  const m = createMetrics({ defaultMetrics: false });
  m.eventsReceived.inc({ client: 'segment', type: 'track' }, received);
  m.heldEvents.set({ destination: 'meta' }, held);
  m.observe({ deliveryQueues: () => [{ destination: 'meta', queued, capacity: 1000 }], ready: () => ready });
  return m.registry.getMetricsAsJSON();
}

const value = async (text: Promise<string>, series: string): Promise<number | undefined> => {
  const line = (await text).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('aggregateMetrics', () => {
  it('sums counters and counts, takes the maximum where a sum means nothing, and says how many workers answered', async () => {
    const text = aggregateMetrics([await worker(3, 10, true, 1), await worker(4, 700, false, 2)], { workers: 2, restarts: 1 }).metrics();
    const cases: [string, number][] = [
      ['tagwarden_events_received_total{client="segment",type="track"}', 7],
      ['tagwarden_held_events{destination="meta"}', 3],
      // The fullest worker's queue, against one worker's bound (the alert divides them).
      ['tagwarden_delivery_queued_events{destination="meta"}', 700],
      ['tagwarden_delivery_queue_capacity_events{destination="meta"}', 1000],
      // A worker draining in a rolling restart does not make the host unready.
      ['tagwarden_ready', 1],
      ['tagwarden_workers', 2],
      ['tagwarden_worker_restarts_total', 1],
    ];
    for (const [series, want] of cases) expect([series, await value(text, series)]).toEqual([series, want]);
  });

  it('no worker answered: zero workers, the counters absent', async () => {
    const text = aggregateMetrics([], { workers: 0, restarts: 0 }).metrics();
    expect(await value(text, 'tagwarden_workers')).toBe(0);
    expect(await value(text, 'tagwarden_events_received_total{client="segment",type="track"}')).toBeUndefined();
  });
});
