import { describe, expect, it } from 'vitest';
import { RequestSlots } from './slots.ts';

describe('RequestSlots', () => {
  it('grants maxConcurrent at once, then hands each released slot to the oldest waiter', async () => {
    const s = new RequestSlots(2, 10);
    expect(s.acquire()).toBe(true);
    expect(s.acquire()).toBe(true);
    const order: string[] = [];
    const first = s.acquire();
    const second = s.acquire();
    expect(first).toBeInstanceOf(Promise);
    void (first as Promise<boolean>).then(() => order.push('first'));
    void (second as Promise<boolean>).then(() => order.push('second'));
    expect(s.waiting).toBe(2);
    s.release();
    await Promise.resolve();
    expect(order).toEqual(['first']);
    // The slot passed straight on: still two active.
    expect(s.active).toBe(2);
    s.release();
    await Promise.resolve();
    expect(order).toEqual(['first', 'second']);
    s.release();
    s.release();
    expect(s.active).toBe(0);
  });

  it('refuses at once when maxWaiting lookups already wait', () => {
    const s = new RequestSlots(1, 1);
    expect(s.acquire()).toBe(true);
    expect(s.acquire()).toBeInstanceOf(Promise);
    expect(s.acquire()).toBe(false);
    expect(s.waiting).toBe(1);
  });

  it('maxWaiting 0: nobody waits', () => {
    const s = new RequestSlots(1, 0);
    expect(s.acquire()).toBe(true);
    expect(s.acquire()).toBe(false);
  });
});
