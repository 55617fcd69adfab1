/**
 * The request budget for the upstream verify API: at most `limit` calls in ANY window of
 * `windowMs` (60 s for the plan rates of the seed cookieboss-consent-verification-api.txt,
 * "Rate limits": 100 / 500 / 1,000 requests per minute).
 *
 * A sliding log rather than a token bucket: a bucket refilled at limit/60 per second can still
 * let through `limit` + (refill during the window) calls in some 60 s window, and the upstream
 * answers anything over its rate with 429. The log keeps the time of each of the last `limit`
 * grants in a ring; a new call is granted only when the oldest of them is at least `windowMs`
 * old, so any `limit` + 1 consecutive grants span at least `windowMs` and no half-open window
 * [t, t + windowMs) can ever hold more than `limit`. Memory is O(limit), each decision O(1).
 *
 * Pure: the caller passes `now`; no timers. The rule itself is `slidingWindowRule`, which the
 * fleet-wide budget (./fleet-budget.ts, grants logged in the store) applies to the log it reads
 * under the store's lock: one rule, whether the log is this ring or a table.
 */
export const BUDGET_WINDOW_MS = 60_000;

/**
 * What a grant log looks like to the rule: `oldest` is the time of the `limit`-th latest grant
 * (-Infinity while there have been fewer), `latest` the latest time the log has seen.
 */
export interface WindowView {
  oldest: number;
  latest: number;
}

export interface WindowDecision {
  /** The time the decision is made at: `now`, clamped to be no earlier than the log's latest. */
  at: number;
  granted: boolean;
  /** Earliest time a call can be granted (`at` when one can be now). */
  nextAvailableAt: number;
}

/**
 * The sliding-window rule: a call at `now` is granted when the `limit`-th latest grant is at least
 * `windowMs` old. A clock that steps backwards must not reopen the budget, so `now` is clamped to
 * the log's latest time and the recorded grant times stay non-decreasing.
 */
export function slidingWindowRule(view: WindowView, now: number, windowMs: number): WindowDecision {
  const at = Math.max(now, view.latest);
  return { at, granted: at - view.oldest >= windowMs, nextAvailableAt: Math.max(at, view.oldest + windowMs) };
}

/** The view of a log given as its latest grant times, newest first (at least the last `limit`). */
export function viewOfLatest(newestFirst: readonly number[], limit: number): WindowView {
  return { oldest: newestFirst.length >= limit ? newestFirst[limit - 1]! : -Infinity, latest: newestFirst[0] ?? -Infinity };
}

/**
 * A request budget as the upstream admission (./admission.ts) takes from it: this instance's own
 * log (SlidingWindowBudget, synchronous) or the fleet's (./fleet-budget.ts, one store transaction
 * per call). `'unavailable'`: the shared log could not be read, so no call may go out (fail closed).
 */
export interface RequestBudget {
  readonly limit: number;
  tryTake(now: number): boolean | Promise<boolean | 'unavailable'>;
  nextAvailableAt(now: number): number;
  /** Calls granted in the window ending at `now` (the fleet's: as last seen). */
  used(now: number): number;
}

export class SlidingWindowBudget implements RequestBudget {
  readonly limit: number;
  readonly windowMs: number;
  /** Times of the last `limit` grants; `#head` is the oldest. -Infinity = never used. */
  readonly #ring: number[];
  #head = 0;
  /** The latest time seen (see slidingWindowRule's clamp). */
  #latest = -Infinity;

  constructor(limit: number, windowMs: number = BUDGET_WINDOW_MS) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('budget limit must be a positive integer');
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError('budget window must be a positive number of ms');
    this.limit = limit;
    this.windowMs = windowMs;
    this.#ring = new Array<number>(limit).fill(-Infinity);
  }

  #decide(now: number): WindowDecision {
    const d = slidingWindowRule({ oldest: this.#ring[this.#head]!, latest: this.#latest }, now, this.windowMs);
    this.#latest = d.at;
    return d;
  }

  /** Whether a call at `now` would be granted, without taking it. */
  available(now: number): boolean {
    return this.#decide(now).granted;
  }

  /** Takes one call from the budget if the window allows it. */
  tryTake(now: number): boolean {
    const d = this.#decide(now);
    if (!d.granted) return false;
    this.#ring[this.#head] = d.at;
    this.#head = (this.#head + 1) % this.limit;
    return true;
  }

  /** Earliest time a call can be granted (`now` when one can be granted now). */
  nextAvailableAt(now: number): number {
    return this.#decide(now).nextAvailableAt;
  }

  /** Calls granted in the window ending at `now`. */
  used(now: number): number {
    return countInWindow(this.#ring, this.#decide(now).at, this.windowMs);
  }
}

/** Grants of `times` in the window of `windowMs` ending at `at`. */
export function countInWindow(times: Iterable<number>, at: number, windowMs: number): number {
  let n = 0;
  for (const t of times) if (at - t < windowMs) n++;
  return n;
}
