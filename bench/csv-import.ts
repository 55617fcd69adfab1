/**
 * CSV import rows/s on each store engine, against plain INSERTs of the same rows in one
 * transaction on the same engine, in the same run.
 *
 *   node bench/csv-import.ts [--rows 100000] [--postgres <url>] [--engines sqlite,postgres]
 *   (npm run bench -- --suite import)
 *
 * - import: Tagwarden with a fresh store (bench/servers/consent.ts, as src/main.ts composes it),
 *   the file posted to `POST /api/v1/consent/import` and timed until the report arrives: reading
 *   the CSV, checking each row, one transaction per 5,000 rows, each row a hash-chained audit
 *   entry, its item and its profile (src/api/consent/write-routes.ts, src/store/consent.ts).
 * - baseline: the same rows (action, category, valid_until, timestamp, customer_id) as plain
 *   `INSERT`s, one statement per row, in one transaction, into a table with no index, through the
 *   store's own Db seam (src/store/db.ts) on a fresh database of the same engine: the floor any
 *   import of these rows pays on that engine.
 *
 * PostgreSQL: `--postgres <url>`, or TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test);
 * each run makes its own schema and drops it afterwards. Without either, only SQLite runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDb } from '../src/store/open.ts';
import { TEST_DATABASE_URL } from '../test/test-database.ts';
import { positive } from './args.ts';
import { startChild } from './children.ts';
import { csvFile, csvRow, waitForKey } from './consent-csv.ts';
import { machineLine, markdownTable, watchdog } from './tally.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    postgres: { type: 'string' },
    engines: { type: 'string', default: 'sqlite,postgres' },
  },
  strict: true,
});
const rows = positive('rows', values.rows, true);
const pgUrl = values.postgres ?? TEST_DATABASE_URL;
const engines = values.engines.split(',').map((e) => e.trim());
for (const e of engines) if (e !== 'sqlite' && e !== 'postgres') throw new Error(`unknown engine ${e} (sqlite, postgres)`);
watchdog('csv-import', 15 * 60_000);

interface EngineResult {
  engine: string;
  importS: number;
  stored: number;
  status: number;
  plainS: number;
}

/** A fresh schema on the PostgreSQL server, a URL whose connections use it, and how to drop it. */
async function freshSchema(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `tw_bench_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE SCHEMA ${schema}`);
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return { url: u.toString(), drop: () => run(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) };
}

/** Two fresh stores of one engine: one for Tagwarden's import, one for the plain INSERTs. */
async function stores(engine: string, dir: string): Promise<{ importUrl: string; plainUrl: string; cleanup: () => Promise<void> }> {
  if (engine === 'sqlite') return { importUrl: `sqlite:${join(dir, 'import.db')}`, plainUrl: `sqlite:${join(dir, 'plain.db')}`, cleanup: () => Promise.resolve() };
  const a = await freshSchema(pgUrl!);
  const b = await freshSchema(pgUrl!);
  return {
    importUrl: a.url,
    plainUrl: b.url,
    cleanup: async () => {
      await a.drop();
      await b.drop();
    },
  };
}

async function importRun(storeUrl: string, file: string): Promise<{ seconds: number; stored: number; status: number }> {
  const tw = await startChild('tagwarden', 'bench/servers/consent.ts', ['--store', storeUrl]);
  try {
    const key = await waitForKey(tw);
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${tw.port}/api/v1/consent/import`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': key }, body: file });
    const report = (await res.json()) as { stored?: number };
    return { seconds: (performance.now() - started) / 1000, stored: report.stored ?? 0, status: res.status };
  } finally {
    await tw.stop();
  }
}

async function plainRun(storeUrl: string): Promise<number> {
  const db = await openDb(storeUrl);
  try {
    await db.run('CREATE TABLE bench_rows (action TEXT NOT NULL, category TEXT NOT NULL, valid_until TEXT NOT NULL, ts BIGINT NOT NULL, customer_id TEXT NOT NULL)');
    const started = performance.now();
    await db.transaction(async (tx) => {
      for (let i = 0; i < rows; i++) {
        const r = csvRow(i);
        await tx.run('INSERT INTO bench_rows (action, category, valid_until, ts, customer_id) VALUES (?, ?, ?, ?, ?)', [r.action, r.category, r.validUntil, r.timestamp, r.customerId]);
      }
    });
    const seconds = (performance.now() - started) / 1000;
    const count = await db.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM bench_rows');
    if (Number(count?.n) !== rows) throw new Error(`plain INSERTs stored ${String(count?.n)} rows, not ${rows}`);
    return seconds;
  } finally {
    await db.close();
  }
}

const file = csvFile(rows);
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-import-'));
const results: EngineResult[] = [];
const skipped: string[] = [];
try {
  for (const engine of engines) {
    if (engine === 'postgres' && pgUrl === undefined) {
      skipped.push('postgres: no --postgres <url> and no TEST_DATABASE_URL');
      continue;
    }
    const s = await stores(engine, dir);
    try {
      console.error(`${engine}: importing ${rows} rows`);
      const imp = await importRun(s.importUrl, file);
      console.error(`${engine}: ${rows} plain INSERTs in one transaction`);
      const plainS = await plainRun(s.plainUrl);
      results.push({ engine, importS: imp.seconds, stored: imp.stored, status: imp.status, plainS });
    } finally {
      await s.cleanup();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(machineLine());
console.log(`CSV import of ${rows.toLocaleString('en')} rows (${(file.length / 1e6).toFixed(1)} MB, ${rows / 10} customers x 10 categories) against plain INSERTs of the same rows in one transaction, same engine:`);
console.log('');
const rate = (s: number): string => Math.round(rows / s).toLocaleString('en');
console.log(
  markdownTable(
    ['engine', 'import s', 'import rows/s', 'stored', 'plain INSERT s', 'plain rows/s', 'import / plain rows/s'],
    results.map((r) => [r.engine, r.importS.toFixed(2), rate(r.importS), `${r.stored} (HTTP ${r.status})`, r.plainS.toFixed(2), rate(r.plainS), `**${(r.plainS / r.importS).toFixed(2)}x**`]),
  ).join('\n'),
);
for (const r of results) if (r.stored !== rows || r.status !== 200) console.log(`WARNING: ${r.engine}: the import stored ${r.stored} of ${rows} rows (HTTP ${r.status})`);
for (const s of skipped) console.log(`skipped ${s}`);
