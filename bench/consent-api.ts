/**
 * Consent API benchmark (`npm run bench:consent-api`):
 * 1. CSV import of 100,000 rows (10,000 customers × 10 categories) into a fresh SQLite store
 *    through `POST /api/v1/consent/import`; target ≤ 10 s. Baseline in the same run: parsing the
 *    same file with the streaming CSV reader alone (no HTTP, no store).
 * 2. Verify lookups/s: `GET /api/v1/public/sites/bench/consent/verify?visitor_id=…` over 1,000
 *    stored visitors, with autocannon, against a bare Express app answering the same JSON.
 * It measures; it does not gate (exit 0 unless it could not run).
 *
 *   node bench/consent-api.ts [--rows 100000] [--duration 8] [--connections 50] [--store <url>]
 *
 * `--store` puts the store elsewhere than a fresh SQLite file, e.g. a PostgreSQL schema made empty
 * beforehand: `postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Dtw_bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { readCsv } from '../src/api/consent/csv.ts';
import { startChild, type ChildHandle } from './children.ts';
import { csvFile, waitForKey } from './consent-csv.ts';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}
const rows = flag('rows', 100_000);
const duration = flag('duration', 8);
const connections = flag('connections', 50);
const storeIndex = process.argv.indexOf('--store');
const storeUrl = storeIndex === -1 ? undefined : process.argv[storeIndex + 1];
const TARGET_IMPORT_S = 10;

async function lookups(port: number, key: string | undefined, visitors: number): Promise<{ rps: number; p99: number; non2xx: number }> {
  let n = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          const headers: Record<string, string> = key === undefined ? {} : { 'x-api-key': key };
          return { ...req, path: `/api/v1/public/sites/bench/consent/verify?visitor_id=visitor-${n++ % visitors}`, headers };
        },
      },
    ],
  });
  return { rps: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx };
}

const dir = mkdtempSync(join(tmpdir(), 'tw-bench-consent-'));
const children: ChildHandle[] = [];
try {
  const file = csvFile(rows);
  const t0 = performance.now();
  let parsed = 0;
  for await (const r of readCsv([Buffer.from(file)])) if ('fields' in r) parsed++;
  const parseS = (performance.now() - t0) / 1000;

  const tw = await startChild('tagwarden', 'bench/servers/consent.ts', ['--store', storeUrl ?? `sqlite:${join(dir, 'bench.db')}`]);
  children.push(tw);
  const key = await waitForKey(tw);
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${tw.port}/api/v1/consent/import`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': key }, body: file });
  const report = (await res.json()) as Record<string, unknown>;
  const importS = (performance.now() - started) / 1000;

  // 1,000 visitors with stored consent for the lookups.
  const visitors = 1000;
  for (let i = 0; i < visitors; i += 500) {
    const events = Array.from({ length: 500 }, (_, k) => ({ visitor_id: `visitor-${i + k}`, action: 'accept', category: 'analytics', timestamp: 1_760_000_000 + k, valid_until: 'unlimited' }));
    const r = await fetch(`http://127.0.0.1:${tw.port}/api/v1/consent/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ events }) });
    if (r.status !== 200) throw new Error(`seeding visitors failed: ${r.status}`);
  }
  const own = await lookups(tw.port, key, visitors);
  await tw.stop();
  const base = await startChild('express', 'bench/servers/express-verify.ts', []);
  children.push(base);
  const bare = await lookups(base.port, undefined, visitors);
  await base.stop();

  const out = [
    `CSV import: ${rows.toLocaleString('en')} rows (${(file.length / 1e6).toFixed(1)} MB, ${rows / 10} customers × 10 categories) into ${storeUrl === undefined ? 'a fresh SQLite store' : 'the --store database'}`,
    `  tagwarden  ${importS.toFixed(2)} s  (${Math.round(rows / importS).toLocaleString('en')} rows/s), HTTP ${res.status}; report: rows=${String(report.rows)} stored=${String(report.stored)} applied=${String(report.applied)} duplicates=${String(report.duplicates)} invalid=${String(report.invalid)}`,
    `  baseline   ${parseS.toFixed(2)} s  parsing the same file with the streaming reader alone (${parsed.toLocaleString('en')} records)`,
    `  target <= ${TARGET_IMPORT_S} s: ${importS <= TARGET_IMPORT_S ? 'HOLDS' : 'MISSED'}; import / parse only: ${(importS / parseS).toFixed(1)}x`,
    `verify lookups over ${visitors} stored visitors, ${connections} connections, ${duration} s:`,
    `  tagwarden  ${Math.round(own.rps).toLocaleString('en')} lookups/s, p99 ${own.p99} ms, non-2xx ${own.non2xx}`,
    `  express    ${Math.round(bare.rps).toLocaleString('en')} lookups/s, p99 ${bare.p99} ms (bare app, fixed answer, no key, no store)`,
    `  tagwarden / express: ${(own.rps / bare.rps).toFixed(2)}`,
  ];
  console.log(out.join('\n'));
} finally {
  for (const c of children) await c.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
