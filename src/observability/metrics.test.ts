import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics, incrementer } from './metrics.ts';

describe('incrementer', () => {
  it('counts per label set like Counter.inc(labels)', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const inc = incrementer(m.decisions, ['destination', 'outcome', 'reason']);
    inc(['meta', 'forward', 'consent_granted:advertising']);
    inc(['meta', 'forward', 'consent_granted:advertising']);
    inc(['meta', 'drop', 'consent_denied:advertising'], 3);
    const values = (await m.decisions.get()).values.map((v) => [v.labels, v.value]);
    expect(values).toEqual([
      [{ destination: 'meta', outcome: 'forward', reason: 'consent_granted:advertising' }, 2],
      [{ destination: 'meta', outcome: 'drop', reason: 'consent_denied:advertising' }, 3],
    ]);
  });

  it('holds its counts until the counter is read, then adds them once (a scrape reads them too)', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const inc = incrementer(m.eventsReceived, ['client', 'type']);
    const other = incrementer(m.eventsReceived, ['client', 'type']);
    inc(['segment', 'track'], 0);
    expect(await m.registry.metrics()).toContain('tagwarden_events_received_total{client="segment",type="track"} 0\n');
    inc(['segment', 'track']);
    other(['segment', 'track'], 2);
    m.eventsReceived.inc({ client: 'segment', type: 'track' });
    expect(await m.registry.metrics()).toContain('tagwarden_events_received_total{client="segment",type="track"} 4\n');
    expect((await m.eventsReceived.get()).values.map((v) => v.value)).toEqual([4]);
    expect(() => inc(['segment', 'track'], -1)).toThrow(TypeError);
    expect(() => incrementer(new Counter({ name: 'x_total', help: 'x', registers: [] }), [])).toThrow(TypeError);
  });
});

describe('scrape-time gauges', () => {
  it('read the delivery queues and readiness from the sources given to observe', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let ready = true;
    let queues = [
      { destination: 'meta', queued: 7, capacity: 100 },
      { destination: 'ga4', queued: 0, capacity: 100 },
    ];
    m.observe({ deliveryQueues: () => queues, ready: () => ready });
    let text = await m.registry.metrics();
    expect(text).toContain('tagwarden_delivery_queued_events{destination="meta"} 7\n');
    expect(text).toContain('tagwarden_delivery_queued_events{destination="ga4"} 0\n');
    expect(text).toContain('tagwarden_delivery_queue_capacity_events{destination="meta"} 100\n');
    expect(text).toContain('tagwarden_ready 1\n');
    ready = false;
    queues = [{ destination: 'ga4', queued: 3, capacity: 100 }];
    text = await m.registry.metrics();
    expect(text).toContain('tagwarden_ready 0\n');
    // A destination no longer reported leaves no stale series.
    expect(text).not.toContain('destination="meta"');
    expect(text).toContain('tagwarden_delivery_queued_events{destination="ga4"} 3\n');
  });
});
