import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BUDGET_WINDOW_MS, countInWindow, SlidingWindowBudget, slidingWindowRule, viewOfLatest } from './rate-budget.ts';

const W = BUDGET_WINDOW_MS;

describe('SlidingWindowBudget', () => {
  it.each([
    // [limit, arrival times, expected grants]
    [3, [0, 1, 2, 3], [true, true, true, false]],
    [3, [0, 1, 2, W - 1, W, W + 1, W + 2, W + 3], [true, true, true, false, true, true, true, false]],
    // A window is [t, t + 60 s): the grant at 0 leaves it exactly at 60 000.
    [1, [0, W - 1, W, 2 * W - 1, 2 * W], [true, false, true, false, true]],
    // Refusals take nothing: a steady stream over the limit still gets `limit` per window.
    [2, [0, 10, 20, 30, W, W + 5, W + 10, W + 20], [true, true, false, false, true, false, true, false]],
  ])('limit %i, arrivals %j', (limit, arrivals, expected) => {
    const b = new SlidingWindowBudget(limit);
    expect(arrivals.map((t) => b.tryTake(t))).toEqual(expected);
  });

  it('available() and nextAvailableAt() agree with tryTake and take nothing', () => {
    const b = new SlidingWindowBudget(2);
    expect(b.available(0)).toBe(true);
    expect(b.nextAvailableAt(0)).toBe(0);
    b.tryTake(0);
    b.tryTake(100);
    expect(b.available(200)).toBe(false);
    expect(b.nextAvailableAt(200)).toBe(W);
    expect(b.used(200)).toBe(2);
    expect(b.tryTake(W - 1)).toBe(false);
    expect(b.tryTake(W)).toBe(true);
    expect(b.nextAvailableAt(W)).toBe(W + 100);
    expect(b.used(W)).toBe(2);
    expect(b.used(W + 100)).toBe(1);
  });

  it('a clock stepping backwards does not reopen the budget', () => {
    const b = new SlidingWindowBudget(1);
    expect(b.tryTake(W * 10)).toBe(true);
    // Time jumps back a whole window: an unclamped log would see the grant as in the future.
    expect(b.tryTake(W * 9)).toBe(false);
    expect(b.tryTake(W * 11 - 1)).toBe(false);
    expect(b.tryTake(W * 11)).toBe(true);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => new SlidingWindowBudget(0)).toThrow(RangeError);
    expect(() => new SlidingWindowBudget(1.5)).toThrow(RangeError);
    expect(() => new SlidingWindowBudget(10, 0)).toThrow(RangeError);
  });

  it('property: never more than `limit` grants in any 60 s window, and never a needless refusal', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 70_000 })), { maxLength: 300 }),
        (limit, gaps) => {
          const b = new SlidingWindowBudget(limit);
          const grants: number[] = [];
          let t = 1_000_000;
          for (const gap of gaps) {
            t += gap;
            // Reference: granted exactly when fewer than `limit` grants lie in (t - W, t].
            const recent = grants.filter((g) => t - g < W).length;
            const granted = b.tryTake(t);
            expect(granted).toBe(recent < limit);
            if (granted) grants.push(t);
          }
          // Any window [s, s + W) holding the most grants can be slid to start at a grant, so
          // checking windows that start at each grant covers all of them.
          for (let i = 0; i + limit < grants.length; i++) expect(grants[i + limit]! - grants[i]!).toBeGreaterThanOrEqual(W);
          for (const s of grants) expect(grants.filter((g) => g >= s && g < s + W).length).toBeLessThanOrEqual(limit);
        },
      ),
      { seed: 20260308, numRuns: 300 },
    );
  });

  it('property: the plan rates (100 / 500 / 1,000 per minute) hold under bursts of arbitrary arrivals', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(100, 500, 1_000),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 80 }),
        (limit, bursts) => {
          const b = new SlidingWindowBudget(limit);
          const grants: number[] = [];
          let t = 0;
          for (const [gap, count] of bursts) {
            t += gap;
            for (let i = 0; i < count; i++) if (b.tryTake(t)) grants.push(t);
          }
          for (let i = 0; i + limit < grants.length; i++) expect(grants[i + limit]! - grants[i]!).toBeGreaterThanOrEqual(W);
        },
      ),
      { seed: 7, numRuns: 60 },
    );
  });
});

describe('slidingWindowRule (the one rule of the instance and the fleet budgets)', () => {
  const I = -Infinity;
  it.each([
    // [oldest, latest, now, expected {at, granted, nextAvailableAt}]
    ['an empty log grants', I, I, 5, { at: 5, granted: true, nextAvailableAt: 5 }],
    ['fewer than limit grants: grants', I, 100, 200, { at: 200, granted: true, nextAvailableAt: 200 }],
    ['the limit-th latest grant inside the window: refuses until it leaves', 100, 150, W + 99, { at: W + 99, granted: false, nextAvailableAt: W + 100 }],
    ['exactly a window old: grants (windows are half-open)', 100, 150, W + 100, { at: W + 100, granted: true, nextAvailableAt: W + 100 }],
    ['a clock behind the log is clamped to the latest grant', 100, 10 * W, 5, { at: 10 * W, granted: true, nextAvailableAt: 10 * W }],
    ['clamped, still inside', 9 * W + 1, 10 * W, 5, { at: 10 * W, granted: false, nextAvailableAt: 10 * W + 1 }],
  ])('%s', (_name, oldest, latest, now, expected) => {
    expect(slidingWindowRule({ oldest, latest }, now, W)).toEqual(expected);
  });

  it.each([
    // [newest first, limit, view]
    [[], 3, { oldest: -Infinity, latest: -Infinity }],
    [[30, 20], 3, { oldest: -Infinity, latest: 30 }],
    [[30, 20, 10], 3, { oldest: 10, latest: 30 }],
    [[40, 30, 20, 10], 3, { oldest: 20, latest: 40 }],
  ])('viewOfLatest(%j, %i)', (newestFirst, limit, view) => {
    expect(viewOfLatest(newestFirst, limit)).toEqual(view);
  });

  it('counting grants in the window agrees with the ring: a log read back newest first decides as the ring does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 30_000 }), { maxLength: 120 }), (limit, gaps) => {
        const ring = new SlidingWindowBudget(limit);
        const log: number[] = [];
        let t = 0;
        for (const gap of gaps) {
          t += gap;
          const d = slidingWindowRule(viewOfLatest(log, limit), t, W);
          expect(ring.tryTake(t)).toBe(d.granted);
          if (d.granted) log.unshift(d.at);
          expect(countInWindow(log, t, W)).toBe(ring.used(t));
        }
      }),
      { seed: 16, numRuns: 200 },
    );
  });
});
