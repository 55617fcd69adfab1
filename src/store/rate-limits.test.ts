import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { forEachEngine, type EngineUnderTest } from '../../test/engines.ts';
import { slidingWindowRule, viewOfLatest } from '../consent/upstream/rate-budget.ts';
import { takeToken } from '../api/rate-limit.ts';
import type { Db } from './db.ts';
import { openDb } from './open.ts';
import { stepBucket, takeGrant, type GrantLogOptions, type GrantLogView } from './rate-limits.ts';

const W = 60_000;

/**
 * Two handles on one store, as two instances (or worker processes) have: two pools on the same
 * PostgreSQL schema, or two connections to one SQLite file.
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function twoHandles(engine: EngineUnderTest): Promise<[Db, Db]> {
  if (engine.name === 'postgres') {
    const a = await engine.open();
    const b = await openDb(engine.url());
    cleanup.push(() => a.close(), () => b.close());
    return [a, b];
  }
  const dir = mkdtempSync(join(tmpdir(), 'tw-rate-limits-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const a = await openDb(`sqlite:${join(dir, 'store.db')}`);
  const b = await openDb(`sqlite:${join(dir, 'store.db')}`);
  cleanup.push(() => a.close(), () => b.close());
  return [a, b];
}

/**
 * Runs the tasks at once on PostgreSQL. On SQLite one after the other: two handles in ONE process
 * cannot overlap transactions (the second's BEGIN IMMEDIATE busy-waits synchronously, blocking the
 * event loop the first needs to commit); processes on one file serialise on the same lock.
 */
function runAll<T>(engine: EngineUnderTest, tasks: (() => Promise<T>)[]): Promise<T[]> {
  if (engine.name === 'postgres') return Promise.all(tasks.map((t) => t()));
  return tasks.reduce<Promise<T[]>>(async (acc, t) => [...(await acc), await t()], Promise.resolve([]));
}

/** The budget's decision, as src/consent/upstream/fleet-budget.ts hands it in. */
const rule =
  (limit: number) =>
  (view: GrantLogView): number | undefined => {
    const d = slidingWindowRule(viewOfLatest(view.newestFirst, limit), view.now, W);
    return d.granted ? d.at : undefined;
  };

forEachEngine('store: shared rate limits', (engine) => {
  const log = (limit: number, time: GrantLogOptions['time'] = 'caller'): GrantLogOptions => ({ name: 'verify:test', limit, windowMs: W, time });

  it('grant log: concurrent takes through two handles grant exactly the limit, and the window slides', async () => {
    const [a, b] = await twoHandles(engine);
    const o = log(10);
    const round = async (now: number) => {
      const results = await runAll(engine, Array.from({ length: 40 }, (_, i) => () => takeGrant(i % 2 === 0 ? a : b, o, now, rule(10))));
      return results.filter((r) => r.grantedAt !== undefined).length;
    };
    expect(await round(1_000)).toBe(10);
    expect(await round(1_000 + W - 1)).toBe(0);
    expect(await round(1_000 + W)).toBe(10);
    // Grants a window older than the newest are gone; what the rule needs stays.
    const rows = await a.all<{ at: number }>('SELECT at FROM rate_grants WHERE name = ? ORDER BY at', [o.name]);
    expect(rows.map((r) => Number(r.at))).toEqual(Array.from({ length: 10 }, () => 1_000 + W));
  });

  it('grant log: the view is the latest `limit` grants, newest first; other names are apart', async () => {
    const [a] = await twoHandles(engine);
    for (const t of [10, 20, 30, 40]) await takeGrant(a, log(3), t, () => t);
    await takeGrant(a, { ...log(3), name: 'other' }, 50, () => 50);
    const { view, grantedAt } = await takeGrant(a, log(3), 45, () => undefined);
    expect(view).toEqual({ newestFirst: [40, 30, 20], now: 45 });
    expect(grantedAt).toBeUndefined();
  });

  it('grant log: a failing decision rolls back, nothing is granted', async () => {
    const [a] = await twoHandles(engine);
    await expect(
      takeGrant(a, log(3), 0, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await takeGrant(a, log(3), 0, () => undefined)).view.newestFirst).toEqual([]);
  });

  if (engine.name === 'postgres') {
    it('grant log: `database` time is PostgreSQL\'s clock, whatever the caller says', async () => {
      const [a, b] = await twoHandles(engine);
      const before = Date.now();
      const first = await takeGrant(a, log(5, 'database'), 0, rule(5));
      const second = await takeGrant(b, log(5, 'database'), 10 * W, rule(5));
      // The test's machine is the database's: its clock is the one to compare with (generously).
      expect(Math.abs(first.view.now - before)).toBeLessThan(5_000);
      expect(second.view.now).toBeGreaterThanOrEqual(first.view.now);
      expect(second.view.newestFirst).toEqual([first.grantedAt]);
    });
  }

  it('buckets: concurrent steps through two handles are serialised (none lost), per key', async () => {
    const [a, b] = await twoHandles(engine);
    const seen = await runAll(
      engine,
      Array.from({ length: 30 }, (_, i) => () =>
        stepBucket(i % 2 === 0 ? a : b, 'api', 'k1', (current) => {
          const n = current === undefined ? 0 : current.tokens;
          return { next: { tokens: n + 1, at: 0 }, result: n };
        }),
      ),
    );
    expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const other = await stepBucket(a, 'api', 'k2', (current) => ({ next: { tokens: 0, at: 0 }, result: current }));
    expect(other).toBeUndefined();
  });

  it('buckets: the token bucket across two handles admits burst + refill in total', async () => {
    const [a, b] = await twoHandles(engine);
    const limit = { perSecond: 1, burst: 5 };
    const take = (db: Db, now: number) => stepBucket(db, 'api', 'key', (current) => {
      const r = takeToken(current, now, limit);
      return { next: r.bucket, result: r.allowed };
    });
    const burst = await runAll(engine, Array.from({ length: 20 }, (_, i) => () => take(i % 2 === 0 ? a : b, 1_000)));
    expect(burst.filter(Boolean)).toHaveLength(5);
    // 2.5 s later: two whole tokens back (and half of the next).
    const later = await runAll(engine, Array.from({ length: 10 }, (_, i) => () => take(i % 2 === 0 ? a : b, 3_500)));
    expect(later.filter(Boolean)).toHaveLength(2);
    const row = await a.get<{ tokens: number }>("SELECT tokens FROM rate_buckets WHERE name = 'api' AND bucket_key = 'key'");
    expect(Number(row!.tokens)).toBeCloseTo(0.5, 9);
  });
});
