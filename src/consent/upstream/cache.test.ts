import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../lib/fake-clock.ts';
import { VerifyCache, type VerifyCacheOptions } from './cache.ts';
import type { VerifyAnswer } from './verify-response.ts';

const clock = new FakeClock();
const T0 = clock.now();

function cache(over: Partial<VerifyCacheOptions> = {}): VerifyCache {
  return new VerifyCache({ maxEntries: 100, ttlMs: 300_000, negativeTtlMs: 30_000, failureTtlMs: 1_000, ...over });
}

const found = (fetchedAt: number): VerifyAnswer => ({ found: true, categories: { analytics: 'granted' }, fetchedAt });
const none = (fetchedAt: number): VerifyAnswer => ({ found: false, categories: {}, fetchedAt });

describe('VerifyCache: answers', () => {
  it('keeps an answer with consent data for ttlMs from its arrival, "no consent found" for negativeTtlMs', () => {
    const c = cache();
    c.storeAnswer('a', found(T0));
    c.storeAnswer('n', none(T0));
    expect(c.answer('n', T0 + 29_999)).toEqual(none(T0));
    expect(c.answer('n', T0 + 30_000)).toBeUndefined();
    expect(c.answer('a', T0 + 299_999)).toEqual(found(T0));
    expect(c.answer('a', T0 + 300_000)).toBeUndefined();
    // Expired entries are gone, not revived by an earlier time.
    expect(c.answer('a', T0)).toBeUndefined();
  });

  it('a TTL of 0 caches nothing of that kind', () => {
    const c = cache({ negativeTtlMs: 0 });
    c.storeAnswer('n', none(T0));
    c.storeAnswer('a', found(T0));
    expect(c.answer('n', T0)).toBeUndefined();
    expect(c.answer('a', T0)).toEqual(found(T0));
  });

  it('is bounded: the least recently used answer goes first', () => {
    const c = cache({ maxEntries: 2 });
    c.storeAnswer('a', found(T0));
    c.storeAnswer('b', found(T0));
    expect(c.answer('a', T0)).toBeDefined(); // a is now the most recently used
    c.storeAnswer('c', found(T0));
    expect(c.answer('b', T0)).toBeUndefined();
    expect(c.answer('a', T0)).toBeDefined();
    expect(c.answer('c', T0)).toBeDefined();
  });
});

describe('VerifyCache: failure memo', () => {
  it("replays a visitor's own call failure for failureTtlMs, not after", () => {
    const c = cache();
    c.storeFailure('v', { failed: 'http_error' }, T0);
    expect(c.failure('v', T0 + 999)).toEqual({ failed: 'http_error' });
    expect(c.failure('v', T0 + 1_000)).toBeUndefined();
    expect(c.failure('other', T0)).toBeUndefined();
  });

  it('a replayed failure says the visitor may get further no sooner than the memo ends', () => {
    const c = cache();
    c.storeFailure('early', { failed: 'timeout', retryAt: T0 + 50 }, T0);
    c.storeFailure('late', { failed: 'network', retryAt: T0 + 5_000 }, T0);
    expect(c.failure('early', T0 + 10)).toEqual({ failed: 'timeout', retryAt: T0 + 1_000 });
    expect(c.failure('late', T0 + 10)).toEqual({ failed: 'network', retryAt: T0 + 5_000 });
  });

  it.each(['rate_limited', 'closed', 'budget_exhausted', 'circuit_open', 'backing_off', 'overloaded', 'superseded'] as const)(
    '%s is not about the visitor and is never memoised',
    (failed) => {
      const c = cache();
      c.storeFailure('v', { failed }, T0);
      expect(c.failure('v', T0)).toBeUndefined();
    },
  );

  it('failureTtlMs 0 memoises nothing', () => {
    const c = cache({ failureTtlMs: 0 });
    c.storeFailure('v', { failed: 'malformed' }, T0);
    expect(c.failure('v', T0)).toBeUndefined();
  });

  it('forget drops the answer and the failure of that visitor only', () => {
    const c = cache();
    c.storeAnswer('v', found(T0));
    c.storeFailure('v', { failed: 'malformed' }, T0);
    c.storeAnswer('w', found(T0));
    c.forget('v');
    expect(c.answer('v', T0)).toBeUndefined();
    expect(c.failure('v', T0)).toBeUndefined();
    expect(c.answer('w', T0)).toBeDefined();
  });
});
