import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { powerOfTwoParts } from './parts.ts';

describe('powerOfTwoParts', () => {
  it('splits into powers of two, largest first, each at most max', () => {
    expect(powerOfTwoParts(Array.from({ length: 37 }, (_, i) => i), 32).map((p) => p.length)).toEqual([32, 4, 1]);
    expect(powerOfTwoParts(Array.from({ length: 70 }, (_, i) => i), 32).map((p) => p.length)).toEqual([32, 32, 4, 2]);
    expect(powerOfTwoParts([], 8)).toEqual([]);
  });

  it('keeps every item once, in order, with at most log2(max) + 1 distinct lengths', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 2000 }), fc.integer({ min: 0, max: 9 }), (items, k) => {
        const max = 2 ** k;
        const parts = powerOfTwoParts(items, max);
        expect(parts.flat()).toEqual(items);
        for (const p of parts) expect(p.length > 0 && p.length <= max && (p.length & (p.length - 1)) === 0).toBe(true);
        expect(new Set(parts.map((p) => p.length)).size).toBeLessThanOrEqual(k + 1);
      }),
    );
  });
});
