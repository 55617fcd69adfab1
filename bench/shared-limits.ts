/**
 * What a fleet-wide limit costs per call (issue 16, docs/consent.md "Budget"): the time of one
 * grant of the upstream verify budget (src/store/rate-limits.ts `takeGrant`, one transaction
 * under the lock) and of one API token-bucket step (`stepBucket`), one after the other and from
 * two handles at once (two instances), on a SQLite file in a temp directory and, with `--pg`, on
 * PostgreSQL (a fresh schema, dropped after). A diagnostic, not a gate.
 *
 *   node bench/shared-limits.ts [--calls 2000] [--pg postgres://postgres@127.0.0.1:5432/test]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { takeToken } from '../src/api/rate-limit.ts';
import { slidingWindowRule, viewOfLatest } from '../src/consent/upstream/rate-budget.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { stepBucket, takeGrant, type GrantLogView } from '../src/store/rate-limits.ts';
import { positive } from './args.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '2000' }, pg: { type: 'string' } }, strict: true });
const calls = positive('calls', values.calls, true);
const LIMIT = 1_000;
const W = 60_000;

const decide = (view: GrantLogView): number | undefined => {
  const d = slidingWindowRule(viewOfLatest(view.newestFirst, LIMIT), view.now, W);
  return d.granted ? d.at : undefined;
};
const limit = { perSecond: 1e6, burst: 1e9 };

function summary(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(3);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`;
}

async function timed(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

async function run(label: string, a: Db, b: Db, time: 'database' | 'caller'): Promise<void> {
  const o = { name: 'verify:bench', limit: LIMIT, windowMs: W, time };
  let now = 1_000_000;
  // Driven time (SQLite): 100 ms apart, so the window holds 600 grants, under the limit: every
  // take is a grant (the insert path). On PostgreSQL's clock the limit is reached and later takes
  // are refusals that read a full window.
  const grants = await timed(calls, () => takeGrant(a, o, (now += 100), decide));
  const steps = await timed(calls, () => stepBucket(a, 'api', 'key', (current) => {
    const r = takeToken(current, (now += 1), limit);
    return { next: r.bucket, result: r.allowed };
  }));
  // Two handles at once (two instances), half the calls each: what the lock serialises.
  const t = performance.now();
  await Promise.all([a, b].map((db) => timed(calls / 2, () => takeGrant(db, o, (now += 100), decide))));
  const both = performance.now() - t;
  console.log(`${label}: grant ${summary(grants)}; bucket step ${summary(steps)}; two handles: ${calls} grants in ${both.toFixed(0)} ms (${((calls / both) * 1000).toFixed(0)} /s)`);
}

const dir = mkdtempSync(join(tmpdir(), 'tw-shared-limits-'));
try {
  const file = `sqlite:${join(dir, 'store.db')}`;
  const a = await openDb(file);
  // Two handles in one process would block each other's event loop (src/store/rate-limits.test.ts):
  // the SQLite "two handles" row uses one, whose transactions queue.
  await run('sqlite (file)', a, a, 'caller');
  await a.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (values.pg !== undefined) {
  const schema = `tw_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: values.pg });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    const url = new URL(values.pg);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const a = await openDb(url.toString());
    const b = await openDb(url.toString());
    await run('postgres', a, b, 'database');
    await a.close();
    await b.close();
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}
