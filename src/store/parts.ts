/**
 * Statements whose text grows with a list (a multi-row VALUES, an IN list) are run in parts whose
 * lengths are powers of two, so each such statement has at most log2(max) + 1 texts. SQLite's
 * prepared statements are cached by text (src/store/sqlite.ts, a bounded number of them): with a
 * text for every length, a busy journal filled that cache, then prepared a statement afresh on
 * every call, each holding native memory until the garbage collector finalised it (the soak's
 * heap snapshots counted the live statements rising, 348 → 451 in 6 minutes).
 */

/** Consecutive parts of `items` whose lengths are powers of two, each at most `max` (a power of two): 37 items, max 32 → 32, 4, 1. */
export function powerOfTwoParts<T>(items: readonly T[], max: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; ) {
    let n = max;
    while (n > items.length - i) n >>= 1;
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}
