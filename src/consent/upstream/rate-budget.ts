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
 * Pure: the caller passes `now`; no timers.
 */
export const BUDGET_WINDOW_MS = 60_000;

export class SlidingWindowBudget {
  readonly limit: number;
  readonly windowMs: number;
  /** Times of the last `limit` grants; `#head` is the oldest. -Infinity = never used. */
  readonly #ring: number[];
  #head = 0;
  /**
   * The latest time seen. A clock that steps backwards must not reopen the budget: every time is
   * clamped to be no earlier than this, so the recorded grant times stay non-decreasing.
   */
  #latest = -Infinity;

  constructor(limit: number, windowMs: number = BUDGET_WINDOW_MS) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('budget limit must be a positive integer');
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError('budget window must be a positive number of ms');
    this.limit = limit;
    this.windowMs = windowMs;
    this.#ring = new Array<number>(limit).fill(-Infinity);
  }

  #clamp(now: number): number {
    if (now > this.#latest) this.#latest = now;
    return this.#latest;
  }

  /** Whether a call at `now` would be granted, without taking it. */
  available(now: number): boolean {
    const t = this.#clamp(now);
    return t - this.#ring[this.#head]! >= this.windowMs;
  }

  /** Takes one call from the budget if the window allows it. */
  tryTake(now: number): boolean {
    const t = this.#clamp(now);
    if (t - this.#ring[this.#head]! < this.windowMs) return false;
    this.#ring[this.#head] = t;
    this.#head = (this.#head + 1) % this.limit;
    return true;
  }

  /** Earliest time a call can be granted (`now` when one can be granted now). */
  nextAvailableAt(now: number): number {
    const t = this.#clamp(now);
    return Math.max(t, this.#ring[this.#head]! + this.windowMs);
  }

  /** Calls granted in the window ending at `now`. */
  used(now: number): number {
    const t = this.#clamp(now);
    let n = 0;
    for (const at of this.#ring) if (t - at < this.windowMs) n++;
    return n;
  }
}
