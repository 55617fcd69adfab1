import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { createMetrics } from './metrics.ts';
import { createRecentDecisions, recentDecisions } from './recent-decisions.ts';

describe('recent decisions', () => {
  it('keeps nothing until turned on, then the latest N, newest first, ids and names only', () => {
    const recent = createRecentDecisions();
    recent.record('d', 'forward', 'consent_granted', { messageId: 'm0', type: 'track' });
    expect(recent.latest(10)).toEqual([]);
    const clock = new FakeClock(1000);
    recent.keep(3, clock);
    for (let i = 1; i <= 5; i++) {
      clock.advance(1);
      recent.record('d', 'drop', 'consent_denied:ads', { messageId: `m${i}`, type: 'track', event: 'Order Completed' }, `v${i}`);
    }
    expect(recent.latest(10)).toEqual([
      { at: 1005, messageId: 'm5', destinationId: 'd', visitorId: 'v5', outcome: 'drop', reason: 'consent_denied:ads', eventType: 'track', eventName: 'Order Completed' },
      expect.objectContaining({ messageId: 'm4' }),
      expect.objectContaining({ messageId: 'm3' }),
    ]);
    expect(recent.latest(1).map((e) => e.messageId)).toEqual(['m5']);
  });

  it('bounds the event name and leaves absent fields out', () => {
    const recent = createRecentDecisions();
    recent.keep(2, new FakeClock(0));
    recent.record('d', 'forward', 'r', { messageId: 'm', type: 'page', name: 'x'.repeat(500) });
    const [e] = recent.latest(1);
    expect(e!.eventName).toHaveLength(128);
    expect(e).not.toHaveProperty('visitorId');
  });

  it('is one per metrics instance', () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    expect(recentDecisions(a)).toBe(recentDecisions(a));
    expect(recentDecisions(a)).not.toBe(recentDecisions(b));
  });
});
