/**
 * Target (a): Tagwarden as src/main.ts composes it (config validated by parseConfig with the
 * template checks, createApp, createHttpServer), with three destinations — Meta CAPI, GA4 and a
 * webhook — whose endpoints point at the local sink. Fake credentials; opt-in consent with
 * advertising and analytics categories. `--destinations` keeps only some of them (`none`: ingest
 * only, to see what the pipeline and delivery cost).
 *
 *   node bench/servers/tagwarden.ts --sink http://127.0.0.1:PORT [--log warn] [--destinations meta,ga4,webhook|none]
 *                                   [--verify http://127.0.0.1:PORT] [--journal on|off|store] [--receipts]
 *                                   [--max-in-flight ga4=64,meta=8] [--connections-per-origin N]
 *                                   [--verify-per-minute N] [--lifetime-s S]
 *
 * `--verify <origin>` adds an `upstream.verify` block asking a CookieBoss-compatible verify server
 * there (bench/servers/verify.ts), and the summary then also carries the consent lookup counters;
 * `--verify-per-minute` is its `requestsPerMinute` (default: the schema's maximum, never the limit).
 * `--max-in-flight` sets `destinations[].maxInFlight` by destination id and
 * `--connections-per-origin` sets `delivery.connectionsPerOrigin` (otherwise the defaults hold).
 *
 * `GET /__bench/delivery` (bench only, answered before the app sees the request) returns each
 * destination's delivery queue (`Delivery.stats()`) and, under the key `__loop`, the event loop's
 * delay since the previous call (p99 and max, ms: a synchronous SQLite commit or fsync shows here)
 * and the garbage-collection pauses in that time (longest and total, ms), for bench/verify's timeline.
 * `POST /__bench/gc` (under node --expose-gc) runs a full garbage collection and returns the heap
 * in use after it (`{"heapUsed": bytes}`; `{}` without the flag). `GET /__bench/journal` returns
 * the journal's rows (`journalSize`: hits not finished, their bytes, dead letters; and `pending`:
 * the hits without a dead letter, still to be finished), or `{}` without a store (bench/soak.ts).
 *
 * `--supervised`: a worker forked by bench/servers/workers.ts (the bench's `workers2` target), under the real supervisor
 * (src/cluster/supervisor.ts), like a worker of `server.workers` above 1: it connects to it as
 * src/main.ts does (src/cluster/worker-link.ts: peers, /metrics of all, consent relay), says when it
 * listens, and takes `--port` (the shared port), `--db` (the shared SQLite file, not deleted at
 * exit) and `--reuse-port` (its own SO_REUSEPORT listener instead of cluster's round-robin).
 *
 * On SIGTERM it stops like main.ts does (flushing pending deliveries), prints one JSON line
 * `{"summary": {...}}` with its counters, and exits 0 (so --cpu-prof gets written).
 */
import cluster from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { pino } from 'pino';
import { openDb } from '../../src/store/open.ts';
import type { Db } from '../../src/store/db.ts';
import { journalSize } from '../../src/store/journal.ts';
import { createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { loadTemplates } from '../../src/destinations/load.ts';
import { checkDestinations } from '../../src/destinations/resolve.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { connectWorker } from '../../src/cluster/worker-link.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { arg, reportReady, tieToParent } from './common.ts';
import { benchConfig } from './config.ts';

tieToParent();

const sink = arg('sink');
const level = arg('log', 'warn');
const only = arg('destinations', 'meta,ga4,webhook');
const verifyOrigin = process.argv.includes('--verify') ? arg('verify') : undefined;
// `--journal on` (the default, as `npm start` runs): the store is a SQLite file in a fresh temp
// directory, and every hit is committed to the delivery journal before its answer. `store`: the
// same store (consent lookups, re-checks before each send) with the journal off, to tell the
// journal's cost from the store's. `off`: no store at all.
const journalMode = arg('journal', 'on');
if (!['on', 'off', 'store'].includes(journalMode)) throw new Error('--journal on|off|store');

const templates = loadTemplates();
const destinationIds = only === 'none' ? [] : only.split(',');
const verifyPerMinute = process.argv.includes('--verify-per-minute') ? Number(arg('verify-per-minute')) : undefined;
const raw = benchConfig(
  sink,
  level,
  destinationIds,
  verifyOrigin === undefined ? {} : { verifyOrigin, ...(verifyPerMinute === undefined ? {} : { verifyRequestsPerMinute: verifyPerMinute }) },
) as Record<string, unknown>;
if (journalMode === 'store') raw.delivery = { ...(raw.delivery as object | undefined), journal: { enabled: false } };
// `--receipts`: decision receipts on (they need the store: not with `--journal off`).
if (process.argv.includes('--receipts')) {
  if (journalMode === 'off') throw new Error('--receipts needs the store (--journal on|store)');
  raw.receipts = { enabled: true };
}
if (process.argv.includes('--connections-per-origin')) {
  raw.delivery = { ...(raw.delivery as object | undefined), connectionsPerOrigin: Number(arg('connections-per-origin')) };
}
if (process.argv.includes('--max-in-flight')) {
  for (const pair of arg('max-in-flight').split(',')) {
    const [id, n] = pair.split('=');
    const d = (raw.destinations as Record<string, unknown>[]).find((x) => x.id === id);
    if (d === undefined || n === undefined) throw new Error(`--max-in-flight: no destination ${id ?? ''} (pairs are <id>=<n>)`);
    d.maxInFlight = Number(n);
  }
}
const config = parseConfig(raw, { env: {}, extraChecks: (r) => checkDestinations(r, templates) }, 'bench config');
await runWorker();

async function runWorker(): Promise<void> {
  // Logs go to stderr: stdout carries the ready line and the summary.
  const logger = createLogger(config.log.level, pino.destination({ dest: 2, sync: false }));
  const link = cluster.isWorker && process.argv.includes('--supervised') ? connectWorker(process, cluster.worker?.id ?? 0, systemClock) : undefined;
  const sharedDb = process.argv.includes('--db') ? arg('db') : undefined;
  const dir = journalMode === 'off' || sharedDb !== undefined ? undefined : mkdtempSync(join(tmpdir(), 'tw-bench-'));
  const dbPath = journalMode === 'off' ? undefined : (sharedDb ?? join(dir!, 'tagwarden.db'));
  const db = dbPath === undefined ? undefined : await openDb(`sqlite:${dbPath}`);
  const app = createApp(config, { logger, templates, ...(db === undefined ? {} : { db }), ...(link === undefined ? {} : { peers: link }) });
  link?.serve(app.metrics.registry);
  await app.recover();
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  // Garbage-collection pauses since the previous call: the longest, and their sum (ms).
  let gc = { maxMs: 0, totalMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.totalMs += e.duration;
      if (e.duration > gc.maxMs) gc.maxMs = e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const server = createHttpServer(config.server, (req, res) => {
    if (req.url === '/__bench/delivery' && req.method === 'GET') {
      const loop = { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6, gcMaxMs: gc.maxMs, gcTotalMs: gc.totalMs };
      loopDelay.reset();
      gc = { maxMs: 0, totalMs: 0 };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ...app.delivery.stats(), __loop: loop }));
      return;
    }
    // With node --expose-gc (bench/soak.ts --gc-probe): a full collection, then the heap still in use, which is what stays reachable.
    if (req.url === '/__bench/gc' && req.method === 'POST') {
      const gcNow = (globalThis as { gc?: () => void }).gc;
      gcNow?.();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(gcNow === undefined ? {} : { heapUsed: process.memoryUsage().heapUsed }));
      return;
    }
    if (req.url === '/__bench/journal' && req.method === 'GET') {
      void (db === undefined ? Promise.resolve({}) : journalCounts(db)).then(
        (counts) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(counts));
        },
        (err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        },
      );
      return;
    }
    app.handler(req, res);
  });
  // A worker's listening is reported by the primary (once all listen), its summary sent to it.
  const port = process.argv.includes('--port') ? Number(arg('port')) : config.server.port;
  const reusePort = process.argv.includes('--reuse-port') ? { reusePort: true, exclusive: true } : {};
  server.listen({ port, host: config.server.host, ...reusePort }, () => {
    if (!cluster.isWorker) reportReady(server);
    link?.listening();
  });

  /** The journal's rows: a hit with a dead letter stays until the dead letter is replayed or purged, so `pending` leaves those out. */
  async function journalCounts(d: Db): Promise<{ hits: number; bytes: number; dead: number; pending: number }> {
    const size = await journalSize(d, config.site.id);
    const row = await d.get<{ n: number | bigint }>(
      "SELECT COUNT(*) AS n FROM journal_hits h WHERE h.site_id = ? AND NOT EXISTS (SELECT 1 FROM journal_work w WHERE w.hit_id = h.id AND w.state = 'dead')",
      [config.site.id],
    );
    return { ...size, pending: Number(row?.n ?? 0) };
  }

  /** The counters that say what happened to the hits: received, rejected, decisions, deliveries. */
  async function summary(): Promise<Record<string, Record<string, number>>> {
    const wanted = ['tagwarden_events_received_total', 'tagwarden_events_rejected_total', 'tagwarden_decisions_total', 'tagwarden_deliveries_total', 'tagwarden_journal_commits_total', 'tagwarden_journal_hits_total'];
    if (verifyOrigin !== undefined) wanted.push('tagwarden_consent_lookups_total');
    const out: Record<string, Record<string, number>> = {};
    for (const metric of await app.metrics.registry.getMetricsAsJSON()) {
      if (!wanted.includes(metric.name)) continue;
      const values: Record<string, number> = {};
      for (const v of metric.values) {
        const key = Object.values(v.labels).join('/') || 'total';
        values[key] = (values[key] ?? 0) + v.value;
      }
      out[metric.name.replace(/^tagwarden_|_total$/g, '')] = values;
    }
    return out;
  }

  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeIdleConnections();
    app
      .shutdown(config.server.shutdownGraceMs)
      .then(summary)
      .then(async (s) => {
        await db?.close();
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
        return s;
      })
      .then((s) => {
        server.closeAllConnections();
        if (cluster.isWorker) process.send?.({ summary: s }, undefined, {}, () => process.exit(0));
        else process.stdout.write(`${JSON.stringify({ summary: s })}\n`, () => process.exit(0));
      })
      .catch((err: unknown) => {
        console.error('tagwarden bench server: shutdown failed', err);
        process.exit(1);
      });
  });
}
