import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, fullJitterBackoffMs } from './backoff.ts';

const opts = { baseMs: 100, maxMs: 5_000 };

describe('full-jitter backoff', () => {
  it.each([
    // [consecutive failures, random, expected delay]
    [1, 0, 0],
    [1, 0.5, 50],
    [1, 0.999, 99],
    [2, 0.5, 100],
    [3, 0.5, 200],
    [6, 0.5, 1_600],
    [7, 0.5, 2_500], // ceiling capped at maxMs
    [50, 0.5, 2_500],
    [2_000, 0.5, 2_500], // 2^1999 overflows to Infinity; the cap still holds
    [0, 0.5, 0],
  ])('failures %i, random %f → %i ms', (failures, r, expected) => {
    expect(fullJitterBackoffMs(failures, opts, () => r)).toBe(expected);
  });

  it.each([
    [Number.NaN, 0],
    [-1, 0],
    [2, 400], // clamped to 1: the ceiling itself
  ])('a misbehaving random source (%f) stays inside [0, ceiling]', (r, expected) => {
    expect(fullJitterBackoffMs(3, opts, () => r)).toBe(expected);
  });

  it('the ceiling doubles up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffCeilingMs(n, opts))).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000]);
  });
});
