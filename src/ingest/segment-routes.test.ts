import { describe, expect, it } from 'vitest';
import { parseBatch, refusalReason } from './segment-routes.ts';

const now = new Date('2026-11-30T12:00:00.000Z');
const facts = { now };

describe('parseBatch', () => {
  it("corrects each event's clock with the batch's sentAt (analytics-next batching, analytics-node, mobile)", () => {
    const r = parseBatch(
      { batch: [{ type: 'track', event: 'x', anonymousId: 'a', timestamp: '2026-11-30T09:59:50.000Z' }, { type: 'track', event: 'y', anonymousId: 'a', timestamp: '2026-11-30T09:59:50.000Z', sentAt: '2026-11-30T09:59:55.000Z' }], sentAt: '2026-11-30T10:00:00.000Z' },
      facts,
      10,
    );
    expect('error' in r ? r.error.message : r.rejected).toEqual([]);
    if ('error' in r) return;
    expect(r.accepted.map(({ event }) => [event.timestamp, event.sentAt])).toEqual([
      ['2026-11-30T11:59:50.000Z', '2026-11-30T10:00:00.000Z'],
      // An event's own sentAt wins.
      ['2026-11-30T11:59:55.000Z', '2026-11-30T09:59:55.000Z'],
    ]);
  });

  it('ignores a batch sentAt that is not a date, as it always did', () => {
    const r = parseBatch({ batch: [{ type: 'track', event: 'x', anonymousId: 'a' }], sentAt: 'yesterday' }, facts, 10);
    expect('error' in r ? r.error.message : r.rejected).toEqual([]);
    expect('error' in r ? undefined : r.accepted[0]?.event.sentAt).toBeUndefined();
  });
});

describe('refusalReason', () => {
  it('names the fields at fault, each once and sorted, the whole event as (event)', () => {
    expect(refusalReason([{ path: 'userId', message: 'a' }, { path: 'event', message: 'b' }, { path: 'userId', message: 'c' }])).toBe('event,userId');
    expect(refusalReason([{ path: '', message: 'nested deeper than 32 levels' }])).toBe('(event)');
  });
});
