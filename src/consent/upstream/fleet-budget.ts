/**
 * The upstream verify budget shared by every instance (and worker process) on one store: the
 * plan's `requestsPerMinute` in any 60 s window IN TOTAL, not per instance (issue 16; seed
 * cookieboss-consent-verification-api.txt, "Rate limits": the upstream limits per API key).
 *
 * Each call that passed the gate and the breaker takes one grant from the store's log
 * (src/store/rate-limits.ts `takeGrant`: one short transaction under a lock), where the same
 * sliding-window rule as the instance budget (./rate-budget.ts `slidingWindowRule`) decides on the
 * fleet's latest grants, timed by PostgreSQL's clock (one clock: no skew between instances).
 *
 * Local short-cuts, both in the safe direction (they only refuse):
 * - the log as last read here (the "mirror", in this instance's time) is a subset of the fleet's,
 *   so when it already holds `limit` grants in the window the call is refused without a round
 *   trip: a burst of cache misses over an exhausted budget costs the store nothing;
 * - when the store fails, the call is refused (`unavailable`: no verify call, the failure path
 *   the lookup already has) and for `retryMs` every call is, without asking the store again.
 *   Fail closed: the budget is a contract with a third party, and an instance that cannot see the
 *   fleet's grants cannot know it has room.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../../store/db.ts';
import { takeGrant, type GrantLogView } from '../../store/rate-limits.ts';
import { BUDGET_WINDOW_MS, countInWindow, slidingWindowRule, viewOfLatest, type RequestBudget } from './rate-budget.ts';

/** Where the fleet's grants are: the store (storeGrantLog), or a fake in tests. */
export interface SharedGrantLog {
  take(now: number, decide: (view: GrantLogView) => number | undefined): Promise<{ view: GrantLogView; grantedAt: number | undefined }>;
}

export interface FleetBudgetOptions {
  limit: number;
  log: SharedGrantLog;
  windowMs?: number;
  /** How long after a store failure calls are refused without asking it. Default 1000 ms. */
  retryMs?: number;
  /** Told of each store failure (the app logs it, rate limited). */
  onError?: (err: unknown) => void;
}

export class FleetBudget implements RequestBudget {
  readonly limit: number;
  readonly #windowMs: number;
  readonly #retryMs: number;
  readonly #log: SharedGrantLog;
  readonly #onError: ((err: unknown) => void) | undefined;
  /** The fleet's latest grants as last read, newest first, in this instance's time. */
  #mirror: number[] = [];
  #unavailableUntil = -Infinity;

  constructor(o: FleetBudgetOptions) {
    if (!Number.isSafeInteger(o.limit) || o.limit < 1) throw new RangeError('budget limit must be a positive integer');
    this.limit = o.limit;
    this.#windowMs = o.windowMs ?? BUDGET_WINDOW_MS;
    this.#retryMs = o.retryMs ?? 1000;
    this.#log = o.log;
    this.#onError = o.onError;
  }

  #local(now: number): { granted: boolean; nextAvailableAt: number } {
    return slidingWindowRule(viewOfLatest(this.#mirror, this.limit), now, this.#windowMs);
  }

  tryTake(now: number): boolean | Promise<boolean | 'unavailable'> {
    if (now < this.#unavailableUntil) return Promise.resolve('unavailable');
    if (!this.#local(now).granted) return false;
    return this.#take(now);
  }

  async #take(now: number): Promise<boolean | 'unavailable'> {
    const decide = (view: GrantLogView): number | undefined => {
      const d = slidingWindowRule(viewOfLatest(view.newestFirst, this.limit), view.now, this.#windowMs);
      return d.granted ? d.at : undefined;
    };
    try {
      const { view, grantedAt } = await this.#log.take(now, decide);
      // The store's clock minus ours (0 on SQLite): the mirror is kept in our time.
      const offset = view.now - now;
      const latest = grantedAt === undefined ? view.newestFirst : [grantedAt, ...view.newestFirst];
      this.#mirror = latest.slice(0, this.limit).map((t) => t - offset);
      return grantedAt !== undefined;
    } catch (err) {
      this.#unavailableUntil = now + this.#retryMs;
      this.#onError?.(err);
      return 'unavailable';
    }
  }

  nextAvailableAt(now: number): number {
    return Math.max(this.#unavailableUntil, this.#local(now).nextAvailableAt);
  }

  used(now: number): number {
    return countInWindow(this.#mirror, now, this.#windowMs);
  }
}

/**
 * The store's grant log for one upstream API key. The key itself is never stored: the log's name
 * is a hash of it, so instances configured with the same key share one budget, as the upstream
 * counts them.
 */
export function storeGrantLog(db: Db, o: { name: string; limit: number; windowMs?: number; time?: 'database' | 'caller' }): SharedGrantLog {
  const options = { name: o.name, limit: o.limit, windowMs: o.windowMs ?? BUDGET_WINDOW_MS, time: o.time ?? 'database' };
  return { take: (now, decide) => takeGrant(db, options, now, decide) };
}

/** The grant log's name for an upstream API key: a hash, never the key. */
export function verifyBudgetName(apiKey: string): string {
  return `verify:${createHash('sha256').update(apiKey).digest('hex').slice(0, 32)}`;
}
