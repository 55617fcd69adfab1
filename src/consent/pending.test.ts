import { describe, expect, it } from 'vitest';
import { createPendingQueue } from './pending.ts';

describe('pending queue', () => {
  function make(maxItems = 3, maxAgeMs = 1000) {
    let now = 0;
    const expired: string[] = [];
    const q = createPendingQueue<string>({ maxItems, maxAgeMs, now: () => now, onExpire: (i) => expired.push(i) });
    return { q, expired, tick: (ms: number) => (now += ms) };
  }

  it('refuses beyond its bound', () => {
    const { q } = make(2);
    expect(q.add('v1', 'a')).toBe(true);
    expect(q.add('v2', 'b')).toBe(true);
    expect(q.add('v1', 'c')).toBe(false);
    expect(q.size).toBe(2);
  });

  it('refuses beyond its byte bound, and frees bytes as items leave', () => {
    let now = 0;
    const q = createPendingQueue<string>({ maxItems: 10, maxBytes: 100, maxAgeMs: 1000, now: () => now, onExpire: () => undefined });
    expect(q.add('v1', 'a', 60)).toBe(true);
    expect(q.add('v2', 'b', 50)).toBe(false);
    expect(q.add('v2', 'b', 40)).toBe(true);
    expect(q.bytes).toBe(100);
    q.take('v1');
    expect(q.bytes).toBe(40);
    now += 2000;
    q.sweep();
    expect(q.bytes).toBe(0);
    q.add('v3', 'c', 10);
    q.drain();
    expect(q.bytes).toBe(0);
  });

  it('take returns a key\'s items in order and frees room', () => {
    const { q } = make(3);
    q.add('v1', 'a');
    q.add('v2', 'b');
    q.add('v1', 'c');
    expect(q.take('v1')).toEqual(['a', 'c']);
    expect(q.size).toBe(1);
    expect(q.take('v1')).toEqual([]);
  });

  it('expires by age, oldest first, skipping taken entries', () => {
    const { q, expired, tick } = make(10, 1000);
    q.add('v1', 'a');
    tick(500);
    q.add('v2', 'b');
    q.add('v3', 'c');
    q.take('v2');
    tick(600);
    expect(q.sweep()).toBe(1);
    expect(expired).toEqual(['a']);
    tick(1000);
    expect(q.sweep()).toBe(1);
    expect(expired).toEqual(['a', 'c']);
    expect(q.size).toBe(0);
  });

  it('drain empties everything', () => {
    const { q } = make();
    q.add('v1', 'a');
    q.add('v2', 'b');
    expect(q.drain().sort()).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
  });
  it('retain rewrites a key\'s items in place: ages still count from the first hold, removed ones free room', () => {
    let now = 0;
    const expired: string[] = [];
    const q = createPendingQueue<string>({ maxItems: 3, maxBytes: 100, maxAgeMs: 1000, now: () => now, onExpire: (i) => expired.push(i) });
    q.add('v1', 'a', 10);
    now = 400;
    q.add('v1', 'b', 20);
    q.add('v2', 'c', 30);
    now = 900;
    expect(q.retain('v1', (i) => (i === 'a' ? 'a2' : undefined))).toBe(1);
    expect(q.size).toBe(2);
    expect(q.bytes).toBe(40);
    expect(q.retain('nobody', (i) => i)).toBe(0);
    // 'a2' was held at 0: it expires at 1000 although it was rewritten at 900; 'b' is gone.
    now = 1000;
    expect(q.sweep()).toBe(1);
    expect(expired).toEqual(['a2']);
    now = 1400;
    expect(q.sweep()).toBe(1);
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
});
