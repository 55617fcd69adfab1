import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bisectionBudget, ceilLog2, MAX_ISOLATED_PER_BATCH, onWholeBatchRejection, spend, SPLIT_REQUESTS } from './bisect.ts';

interface Outcome {
  /** Requests beyond the batch's own first one. */
  extra: number;
  /** How many times each position was delivered / given up. */
  delivered: number[];
  failed: number[];
}

/**
 * A pure simulation of a vendor that rejects any request holding an invalid event, driven by the
 * same decisions the delivery takes (onWholeBatchRejection, spend). Parts are sent in the order
 * the delivery queues them (first half, then second, each at the back of the queue).
 */
function simulate(n: number, bad: ReadonlySet<number>, isolated = MAX_ISOLATED_PER_BATCH): Outcome {
  const delivered = new Array<number>(n).fill(0);
  const failed = new Array<number>(n).fill(0);
  const budget = bisectionBudget(n, isolated);
  const queue: number[][] = [Array.from({ length: n }, (_, i) => i)];
  let requests = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    requests += 1;
    if (!part.some((i) => bad.has(i))) {
      for (const i of part) delivered[i]! += 1;
      continue;
    }
    const verdict = onWholeBatchRejection(part.length, budget);
    if (verdict.action === 'give_up') {
      for (const i of part) failed[i]! += 1;
      continue;
    }
    spend(budget);
    queue.push(part.slice(0, verdict.at), part.slice(verdict.at));
  }
  return { extra: requests - 1, delivered, failed };
}

const positions = (out: number[], want: number) => out.flatMap((c, i) => (c === want ? [i] : []));

describe('bisect: onWholeBatchRejection', () => {
  it.each([
    // size, spent, limit → verdict
    [1, 0, 160, { action: 'give_up', why: 'isolated' }],
    [2, 0, 160, { action: 'split', at: 1 }],
    [3, 0, 160, { action: 'split', at: 2 }],
    [1000, 0, 160, { action: 'split', at: 500 }],
    [1000, 158, 160, { action: 'split', at: 500 }],
    [1000, 159, 160, { action: 'give_up', why: 'budget_spent' }],
    [2, 0, 0, { action: 'give_up', why: 'budget_spent' }],
  ] as const)('a rejected part of %i events, %i of %i extra requests spent → %o', (size, spent, limit, verdict) => {
    expect(onWholeBatchRejection(size, { limit, spent })).toEqual(verdict);
  });

  it.each([
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 2],
    [5, 3],
    [1000, 10],
    [1024, 10],
    [1025, 11],
  ])('ceilLog2(%i) = %i', (n, levels) => {
    expect(ceilLog2(n)).toBe(levels);
  });

  it('budgets enough extra requests to isolate MAX_ISOLATED_PER_BATCH invalid events, none for one event', () => {
    expect(bisectionBudget(1)).toEqual({ limit: 0, spent: 0 });
    expect(bisectionBudget(1000)).toEqual({ limit: MAX_ISOLATED_PER_BATCH * SPLIT_REQUESTS * 10, spent: 0 });
  });
});

describe('bisect: one invalid event costs at most 2·⌈log2 n⌉ extra requests', () => {
  it.each([
    // n, bad position, extra requests (2·log2 n exactly for powers of two)
    [2, 0, 2],
    [2, 1, 2],
    [8, 0, 6],
    [8, 5, 6],
    [16, 15, 8],
    [1000, 0, 20],
    [1000, 999, 18],
    [1000, 617, 20],
    [1024, 517, 20],
    [3, 2, 2],
    [3, 0, 4],
  ])('n = %i, invalid event at %i: %i extra requests', (n, at, extra) => {
    const out = simulate(n, new Set([at]));
    expect(out.extra).toBe(extra);
    expect(out.extra).toBeLessThanOrEqual(SPLIT_REQUESTS * ceilLog2(n));
    expect(positions(out.failed, 1)).toEqual([at]);
    expect(positions(out.delivered, 1)).toHaveLength(n - 1);
    expect(positions(out.delivered, 0)).toEqual([at]);
  });

  it('no invalid event: no extra request', () => {
    expect(simulate(1000, new Set()).extra).toBe(0);
  });
});

describe('bisect: property, against a simulated vendor', () => {
  const batchWithBad = (maxBad: number) =>
    fc.integer({ min: 1, max: 1000 }).chain((n) =>
      fc.tuple(fc.constant(n), fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: Math.min(n, maxBad) })),
    );

  it('up to MAX_ISOLATED_PER_BATCH invalid events: every valid event delivered once, every invalid one given up once, extra ≤ k·2·⌈log2 n⌉', () => {
    fc.assert(
      fc.property(batchWithBad(MAX_ISOLATED_PER_BATCH), ([n, badList]) => {
        const bad = new Set(badList);
        const out = simulate(n, bad);
        for (let i = 0; i < n; i++) {
          expect(out.delivered[i]).toBe(bad.has(i) ? 0 : 1);
          expect(out.failed[i]).toBe(bad.has(i) ? 1 : 0);
        }
        expect(out.extra).toBeLessThanOrEqual(bad.size * SPLIT_REQUESTS * ceilLog2(n));
      }),
      { numRuns: 300 },
    );
  });

  it('any number of invalid events: each event ends exactly once (delivered or given up), every invalid one given up, extra within the budget', () => {
    fc.assert(
      fc.property(batchWithBad(1000), fc.integer({ min: 0, max: 12 }), ([n, badList], isolated) => {
        const bad = new Set(badList);
        const out = simulate(n, bad, isolated);
        for (let i = 0; i < n; i++) {
          expect(out.delivered[i]! + out.failed[i]!).toBe(1);
          if (bad.has(i)) expect(out.failed[i]).toBe(1);
        }
        expect(out.extra).toBeLessThanOrEqual(bisectionBudget(n, isolated).limit);
        // Within the budget's design the isolation is exact.
        if (bad.size <= isolated) expect(positions(out.failed, 1)).toEqual([...bad].sort((a, b) => a - b));
      }),
      { numRuns: 300 },
    );
  });
});
