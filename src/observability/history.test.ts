import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { createHistory } from './history.ts';
import { createMetrics } from './metrics.ts';

const DEST = [{ id: 'meta', template: 'meta-capi' }];

describe('overview history', () => {
  it('buckets the counters by time; totals are the counters since start; received adds up', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    // On a bucket boundary of every window (a multiple of 12 minutes).
    const clock = new FakeClock(1_700_000_640_000);
    const history = createHistory({ metrics, clock });
    metrics.decisions.inc({ destination: 'meta', outcome: 'forward', reason: 'consent_granted' }, 2);
    metrics.decisions.inc({ destination: 'meta', outcome: 'drop', reason: 'consent_denied:ads' });
    clock.advance(15_000);
    await history.idle();
    metrics.heldEvents.inc({ destination: 'meta' }, 3);
    metrics.decisions.inc({ destination: 'meta', outcome: 'redact', reason: 'consent_unknown' });
    metrics.deliveries.inc({ destination: 'meta', outcome: 'retry_scheduled' }, 2);
    metrics.deliveries.inc({ destination: 'meta', outcome: 'failed' });
    clock.advance(15_000);
    await history.idle();
    // Two holds decided: one dropped as unresolved.
    metrics.heldEvents.dec({ destination: 'meta' }, 2);
    metrics.decisions.inc({ destination: 'meta', outcome: 'drop', reason: 'consent_unresolved' });
    metrics.decisions.inc({ destination: 'meta', outcome: 'forward', reason: 'consent_granted' });
    clock.advance(5_000);

    const o = await history.overview('15m', DEST);
    expect(o.bucketMs).toBe(15_000);
    expect(o.buckets).toHaveLength(60);
    expect(o.buckets.at(-1)).toBe(1_700_000_670_000);
    expect(o.start).toBe(o.buckets[0]);
    const [d] = o.destinations;
    expect(d!.series.forwarded.slice(-3)).toEqual([2, 0, 1]);
    expect(d!.series.held.slice(-3)).toEqual([0, 3, -2]);
    expect(d!.series.received.slice(-3)).toEqual([3, 4, 0]);
    expect(d!.series.retried.slice(-3)).toEqual([0, 2, 0]);
    expect(d!.series.dead.slice(-3)).toEqual([0, 1, 0]);
    expect(d!.totals).toEqual({ received: 7, forwarded: 3, redacted: 1, filtered: 2, failed: 0, held: 1, retried: 2, dead: 1, delivered: 0, revoked: 0 });
    expect(d!.filteredReasons).toEqual({ 'consent_denied:ads': 1, consent_unresolved: 1 });
    expect(d!.heldNow).toBe(1);
    for (let i = 0; i < 60; i++) {
      const s = d!.series;
      expect(s.received[i]).toBe(s.forwarded[i]! + s.redacted[i]! + s.filtered[i]! + s.failed[i]! + s.held[i]!);
    }
    history.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('a window starting after old samples counts only what happened inside it', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const clock = new FakeClock(1_700_000_640_000);
    const history = createHistory({ metrics, clock });
    metrics.decisions.inc({ destination: 'meta', outcome: 'forward', reason: 'consent_granted' }, 5);
    // Past the 15-minute window: those five are outside it, but in the hour's.
    for (let i = 0; i < 70; i++) {
      clock.advance(15_000);
      await history.idle();
    }
    metrics.decisions.inc({ destination: 'meta', outcome: 'forward', reason: 'consent_granted' });
    expect((await history.overview('15m', DEST)).destinations[0]!.totals.forwarded).toBe(1);
    expect((await history.overview('1h', DEST)).destinations[0]!.totals.forwarded).toBe(6);
    const day = await history.overview('24h', DEST);
    expect(day.buckets).toHaveLength(120);
    expect(day.bucketMs).toBe(720_000);
    history.stop();
  });

  it('a destination without counts yet is all zeros', async () => {
    const history = createHistory({ metrics: createMetrics({ defaultMetrics: false }), clock: new FakeClock(0) });
    const [d] = (await history.overview('1h', DEST)).destinations;
    expect(d!.totals.received).toBe(0);
    expect(d!.series.received).toHaveLength(120);
    expect(d!.filteredReasons).toEqual({});
    history.stop();
  });
});
