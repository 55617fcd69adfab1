import { describe, expect, it } from 'vitest';
import type { GrantLogView } from '../../store/rate-limits.ts';
import { FakeClock } from '../../lib/fake-clock.ts';
import { UpstreamAdmission } from './admission.ts';
import { FleetBudget, verifyBudgetName, type SharedGrantLog } from './fleet-budget.ts';
import { BUDGET_WINDOW_MS as W } from './rate-budget.ts';

/**
 * A grant log in memory standing in for the store's (src/store/rate-limits.test.ts runs the real
 * one on both engines): takes run one at a time, as under the store's lock; `skewMs` is the
 * "database clock" minus the caller's.
 */
function memoryLog(o: { skewMs?: number } = {}) {
  const grants: number[] = [];
  let calls = 0;
  let failing = false;
  let chain: Promise<unknown> = Promise.resolve();
  const log: SharedGrantLog = {
    take(now, decide) {
      calls++;
      const run = () => {
        if (failing) return Promise.reject(new Error('store down'));
        const view: GrantLogView = { newestFirst: [...grants].reverse(), now: now + (o.skewMs ?? 0) };
        const grantedAt = decide(view);
        if (grantedAt !== undefined) grants.push(grantedAt);
        return Promise.resolve({ view, grantedAt });
      };
      const next = chain.then(run, run);
      chain = next.catch(() => undefined);
      return next;
    },
  };
  return {
    log,
    grants,
    calls: () => calls,
    fail: (on: boolean) => {
      failing = on;
    },
  };
}

const take = async (b: FleetBudget, now: number) => b.tryTake(now);

describe('FleetBudget', () => {
  it('two instances on one log: never more than the limit in any window, together; the window slides', async () => {
    const clock = new FakeClock(0);
    const store = memoryLog();
    const a = new FleetBudget({ limit: 10, log: store.log });
    const b = new FleetBudget({ limit: 10, log: store.log });
    for (let step = 0; step < 20; step++) {
      await Promise.all(Array.from({ length: 30 }, (_, i) => take(i % 2 === 0 ? a : b, clock.now())));
      clock.advance(7_000);
    }
    const g = store.grants;
    expect(g.length).toBeGreaterThan(10);
    for (let i = 0; i + 10 < g.length; i++) expect(g[i + 10]! - g[i]!).toBeGreaterThanOrEqual(W);
    // 140 s: the grants at 0, 63 s and 126 s (each window's first instant with room).
    expect(g.length).toBe(30);
  });

  it('refuses without a store round trip while its last view of the fleet is full', async () => {
    const store = memoryLog();
    const a = new FleetBudget({ limit: 2, log: store.log });
    expect(await take(a, 0)).toBe(true);
    expect(await take(a, 1)).toBe(true);
    expect(store.calls()).toBe(2);
    expect(a.tryTake(2)).toBe(false);
    expect(store.calls()).toBe(2);
    expect(a.used(2)).toBe(2);
    expect(a.nextAvailableAt(2)).toBe(W);
  });

  it('sees the other instances\' grants after a round trip: its view then refuses locally', async () => {
    const store = memoryLog();
    const a = new FleetBudget({ limit: 3, log: store.log });
    const b = new FleetBudget({ limit: 3, log: store.log });
    expect(await take(a, 0)).toBe(true);
    expect(await take(a, 0)).toBe(true);
    expect(await take(b, 10)).toBe(true);
    expect(await take(a, 20)).toBe(false);
    expect(a.used(20)).toBe(3);
    expect(a.tryTake(30)).toBe(false);
    expect(store.calls()).toBe(4);
  });

  it('keeps its view in its own time when the store\'s clock differs', async () => {
    const store = memoryLog({ skewMs: 5_000 });
    const a = new FleetBudget({ limit: 1, log: store.log });
    expect(await take(a, 1_000)).toBe(true);
    // Granted at the store's 6 000 = our 1 000: free again at our 61 000.
    expect(store.grants).toEqual([6_000]);
    expect(a.nextAvailableAt(1_000)).toBe(1_000 + W);
  });

  it('fails closed when the store fails, and does not ask it again for retryMs', async () => {
    const store = memoryLog();
    const errors: unknown[] = [];
    const a = new FleetBudget({ limit: 5, log: store.log, retryMs: 1_000, onError: (e) => errors.push(e) });
    store.fail(true);
    expect(await take(a, 0)).toBe('unavailable');
    expect(errors).toHaveLength(1);
    expect(a.nextAvailableAt(0)).toBe(1_000);
    expect(await take(a, 999)).toBe('unavailable');
    expect(store.calls()).toBe(1);
    store.fail(false);
    expect(await take(a, 1_000)).toBe(true);
  });

  it('names a budget by a hash of the upstream key, never the key', () => {
    const name = verifyBudgetName('secret-key-123');
    expect(name).toMatch(/^verify:[0-9a-f]{32}$/);
    expect(name).not.toContain('secret');
    expect(verifyBudgetName('secret-key-123')).toBe(name);
    expect(verifyBudgetName('other')).not.toBe(name);
  });
});

describe('UpstreamAdmission with the fleet budget', () => {
  const options = { requestsPerMinute: 2, breaker: { windowMs: 60_000, minRequests: 3, errorRatio: 0.5, openMs: 30_000 }, backoff: { baseMs: 100, maxMs: 10_000 }, rateLimitFallbackMs: 60_000, random: () => 0.5 };

  it('admits after the store grants; refuses with budget_exhausted or budget_unavailable (and when it has room)', async () => {
    const store = memoryLog();
    const a = new UpstreamAdmission({ ...options, budget: new FleetBudget({ limit: 2, log: store.log, retryMs: 500 }) });
    const first = a.admit(0);
    expect(first).toBeInstanceOf(Promise);
    expect('failed' in (await first)).toBe(false);
    expect('failed' in (await a.admit(0))).toBe(false);
    expect(await a.admit(0)).toEqual({ failed: 'budget_exhausted', retryAt: W });
    expect(a.budgetUsed(0)).toBe(2);
    expect(a.readiness(0)).toMatchObject({ readyAt: W, room: 0 });
    store.fail(true);
    expect(await a.admit(W)).toEqual({ failed: 'budget_unavailable', retryAt: W + 500 });
  });

  it('asks the gate again after the store answered: a probe taken meanwhile refuses, the grant is spent', async () => {
    const store = memoryLog();
    const a = new UpstreamAdmission({ ...options, budget: new FleetBudget({ limit: 5, log: store.log }) });
    // A 503 with Retry-After closes the gate until 1 000; at 1 000 one probe may go.
    const p = await a.admit(0);
    if ('failed' in p) throw new Error('not admitted');
    a.settle({ kind: 'status', status: 503, retryAfter: '1' }, p, 0);
    const [x, y] = await Promise.all([a.admit(1_000), a.admit(1_000)]);
    const failed = [x, y].filter((r) => 'failed' in r);
    expect(failed).toEqual([{ failed: 'rate_limited' }]);
    expect(store.grants).toHaveLength(3);
  });
});
