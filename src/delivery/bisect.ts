/**
 * Bisection of a batch the vendor rejected whole for one invalid event. Meta's Conversions API
 * rejects the entire request when any event of its batch is invalid
 * (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#batch-requests),
 * so giving the batch up would make up to 999 good events dead letters with the bad one. Instead
 * the batch is split in two halves, both are sent, and a half that is rejected again is split in
 * turn, until a rejected part holds one event: that event is the invalid one and gives up with the
 * vendor's answer, while every accepted half is delivered.
 *
 * One invalid event among n costs two requests per level of halving, at most 2·⌈log2 n⌉ more than
 * the batch's own (exactly 2·log2 n when n is a power of two). k invalid events cost at most
 * k·2·⌈log2 n⌉. A vendor that rejects every request the same way (a wrong pixel id also answers
 * with Meta's invalid-parameter code) would otherwise cost about 2n requests per batch, so each
 * batch has a budget of extra requests, enough to isolate MAX_ISOLATED_PER_BATCH invalid events;
 * once it is spent, a part still rejected gives up whole (dead letters, which can be replayed).
 *
 * Pure: no I/O, no clock. The delivery keeps one BisectionBudget per original batch, shared by
 * all its parts, and asks `onWholeBatchRejection` what to do with each rejected part.
 */

/** Invalid events per batch that bisection always isolates exactly (the budget is sized for them). */
export const MAX_ISOLATED_PER_BATCH = 8;

/** Requests one split adds: each half is sent once. */
export const SPLIT_REQUESTS = 2;

export interface BisectionBudget {
  /** Extra requests the original batch may cost. */
  readonly limit: number;
  /** Extra requests spent so far by its parts. */
  spent: number;
}

/** ⌈log2 n⌉ for n ≥ 1, in integers (no floating-point edge at powers of two). */
export function ceilLog2(n: number): number {
  let levels = 0;
  while (2 ** levels < n) levels += 1;
  return levels;
}

/** The budget of a batch of `size` events: enough for `isolated` invalid events, 0 for one event. */
export function bisectionBudget(size: number, isolated: number = MAX_ISOLATED_PER_BATCH): BisectionBudget {
  return { limit: size <= 1 ? 0 : isolated * SPLIT_REQUESTS * ceilLog2(size), spent: 0 };
}

export type RejectionVerdict =
  /** Send `entries[0, at)` and `entries[at, size)` as two requests. */
  | { action: 'split'; at: number }
  /** Give the part up with the vendor's answer: `isolated` when it is one event, else `budget_spent`. */
  | { action: 'give_up'; why: 'isolated' | 'budget_spent' };

/**
 * What to do with a part of `size` events that the vendor rejected whole. A split spends
 * SPLIT_REQUESTS from the budget (the caller records it with `spend`).
 */
export function onWholeBatchRejection(size: number, budget: Readonly<BisectionBudget>): RejectionVerdict {
  if (size <= 1) return { action: 'give_up', why: 'isolated' };
  if (budget.spent + SPLIT_REQUESTS > budget.limit) return { action: 'give_up', why: 'budget_spent' };
  // The first half takes the odd event, so a part's two halves differ by at most one and every
  // event is at most ⌈log2 n⌉ splits from the original batch.
  return { action: 'split', at: Math.ceil(size / 2) };
}

/** Records a split against the budget. */
export function spend(budget: BisectionBudget): void {
  budget.spent += SPLIT_REQUESTS;
}
