import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { createPendingQueue } from './pending.ts';

describe('pending queue', () => {
  function make(maxItems = 3, maxAgeMs = 1000, maxBytes?: number) {
    const clock = new FakeClock(0);
    const expired: string[] = [];
    const q = createPendingQueue<string>({ maxItems, maxAgeMs, ...(maxBytes === undefined ? {} : { maxBytes }), clock, onExpire: (i) => expired.push(i) });
    return { q, expired, clock, tick: (ms: number) => clock.advance(ms) };
  }

  it('refuses beyond its bound', () => {
    const { q } = make(2);
    expect(q.add('v1', 'a')).toBe(1000);
    expect(q.add('v2', 'b')).toBe(1000);
    expect(q.add('v1', 'c')).toBeUndefined();
    expect(q.size).toBe(2);
  });

  it('refuses beyond its byte bound, and frees bytes as items leave', () => {
    const { q, tick } = make(10, 1000, 100);
    expect(q.add('v1', 'a', 60)).toBeDefined();
    expect(q.add('v2', 'b', 50)).toBeUndefined();
    expect(q.add('v2', 'b', 40)).toBeDefined();
    expect(q.bytes).toBe(100);
    q.take('v1');
    expect(q.bytes).toBe(40);
    tick(2000);
    expect(q.bytes).toBe(0);
    q.add('v3', 'c', 10);
    q.drain();
    expect(q.bytes).toBe(0);
  });

  it("take returns a key's items in order and frees room", () => {
    const { q } = make(3);
    q.add('v1', 'a');
    q.add('v2', 'b');
    q.add('v1', 'c');
    expect(q.take('v1')).toEqual(['a', 'c']);
    expect(q.size).toBe(1);
    expect(q.take('v1')).toEqual([]);
  });

  it('expires by age on its clock, at the deadline and not before, oldest first, skipping taken entries', () => {
    const { q, expired, tick } = make(10, 1000);
    q.add('v1', 'a');
    tick(500);
    q.add('v2', 'b');
    q.add('v3', 'c');
    q.take('v2');
    tick(499);
    expect(expired).toEqual([]);
    tick(1);
    expect(expired).toEqual(['a']);
    tick(499);
    expect(expired).toEqual(['a']);
    tick(1);
    expect(expired).toEqual(['a', 'c']);
    expect(q.size).toBe(0);
    // Nothing due: sweeping by hand expires nothing.
    expect(q.sweep()).toBe(0);
  });

  it('keeps an item no longer than the deadline it is given: earlier than maxAgeMs, never later, refused once passed', () => {
    const { q, expired, tick, clock } = make(10, 1000);
    q.add('v1', 'fresh');
    // Resumed with the deadline it had before a restart: due before the fresh one.
    expect(q.add('v1', 'resumed', 0, clock.now() + 300)).toBe(300);
    // A deadline beyond maxAgeMs is cut to it.
    expect(q.add('v2', 'far', 0, clock.now() + 60_000)).toBe(1000);
    // Already passed (a hold that ran out while the process was down): refused, the caller drops it.
    expect(q.add('v3', 'late', 0, clock.now())).toBeUndefined();
    expect(q.size).toBe(3);
    tick(299);
    expect(expired).toEqual([]);
    tick(1);
    expect(expired).toEqual(['resumed']);
    expect(q.has('v1')).toBe(true);
    tick(700);
    expect(expired).toEqual(['resumed', 'fresh', 'far']);
  });

  it('drain empties everything and stops the timer', () => {
    const { q, clock } = make();
    q.add('v1', 'a');
    q.add('v2', 'b');
    expect(clock.pendingTimers).toBe(1);
    expect(q.drain().sort()).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('retain rewrites a key\'s items in place: ages still count from the first hold, removed ones free room', () => {
    const { q, expired, clock } = make(3, 1000, 100);
    q.add('v1', 'a', 10);
    clock.advance(400);
    q.add('v1', 'b', 20);
    q.add('v2', 'c', 30);
    clock.advance(500);
    expect(q.retain('v1', (i) => (i === 'a' ? 'a2' : undefined))).toBe(1);
    expect(q.size).toBe(2);
    expect(q.bytes).toBe(40);
    expect(q.retain('nobody', (i) => i)).toBe(0);
    // 'a2' was held at 0: it expires at 1000 although it was rewritten at 900; 'b' is gone.
    clock.advance(100);
    expect(expired).toEqual(['a2']);
    clock.advance(400);
    expect(expired).toEqual(['a2', 'c']);
    expect(q.size).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('retain removing everything forgets the key', () => {
    const { q } = make(3);
    q.add('v1', 'a');
    expect(q.retain('v1', () => undefined)).toBe(0);
    expect(q.has('v1')).toBe(false);
    expect(q.take('v1')).toEqual([]);
  });

  it('many adds and takes (the heap compacts its taken entries): every live item still expires, in order', () => {
    const { q, expired, clock } = make(1000, 100_000);
    for (let i = 0; i < 5000; i++) {
      q.add(`v${i}`, `x${i}`);
      if (i % 100 !== 0) q.take(`v${i}`);
      clock.advance(1);
    }
    expect(q.size).toBe(50);
    clock.advance(100_000);
    expect(expired).toEqual(Array.from({ length: 50 }, (_, k) => `x${k * 100}`));
  });
});
