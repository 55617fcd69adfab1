/**
 * Target (a): Tagwarden as src/main.ts composes it (config validated by parseConfig with the
 * template checks, createApp, createHttpServer), with three destinations — Meta CAPI, GA4 and a
 * webhook — whose endpoints point at the local sink. Fake credentials; opt-in consent with
 * advertising and analytics categories. `--destinations` keeps only some of them (`none`: ingest
 * only, to see what the pipeline and delivery cost).
 *
 *   node bench/servers/tagwarden.ts --sink http://127.0.0.1:PORT [--log warn] [--destinations meta,ga4,webhook|none]
 *                                   [--verify http://127.0.0.1:PORT] [--journal on|off|store] [--receipts]
 *                                   [--max-in-flight ga4=64,meta=8] [--connections-per-origin N] [--workers N|auto]
 *
 * `--verify <origin>` adds an `upstream.verify` block asking a CookieBoss-compatible verify server
 * there (bench/servers/verify.ts), and the summary then also carries the consent lookup counters.
 * `--max-in-flight` sets `destinations[].maxInFlight` by destination id and
 * `--connections-per-origin` sets `delivery.connectionsPerOrigin` (otherwise the defaults hold).
 *
 * `GET /__bench/delivery` (bench only, answered before the app sees the request) returns each
 * destination's delivery queue (`Delivery.stats()`) and, under the key `__loop`, the event loop's
 * delay since the previous call (p99 and max, ms: a synchronous SQLite commit or fsync shows here)
 * and the garbage-collection pauses in that time (longest and total, ms), for bench/verify's timeline.
 *
 * `--workers N` sets `server.workers: N` (issue 16's node:cluster setting; a build whose config does
 * not know the key refuses it, and bench/ingest.ts skips the target before starting it). With more
 * than one worker this process is a cluster primary: it forks the workers (this same script), each
 * composing its own app, store and journal (a fresh SQLite file of its own) and listening on the
 * port the primary's cluster shares; the primary prints the ready line once every worker listens,
 * and on SIGTERM stops them, sums their counters and prints one summary. The bench counts the CPU
 * of the whole process tree.
 *
 * `--supervised`: a worker forked by bench/servers/workers.ts, under the real supervisor
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
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { pino } from 'pino';
import { openDb } from '../../src/store/open.ts';
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
const raw = benchConfig(sink, level, destinationIds, verifyOrigin === undefined ? {} : { verifyOrigin }) as Record<string, unknown>;
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
if (process.argv.includes('--workers')) {
  const w = arg('workers');
  raw.server = { ...(raw.server as object), workers: w === 'auto' ? 'auto' : Number(w) };
}
const config = parseConfig(raw, { env: {}, extraChecks: (r) => checkDestinations(r, templates) }, 'bench config');
// Read without the type: the key exists only in builds with issue 16's cluster support.
const workersSetting = (config.server as { workers?: number | 'auto' }).workers;
const workers = workersSetting === 'auto' ? availableParallelism() : (workersSetting ?? 1);
if (workers > 1 && cluster.isPrimary) {
  runPrimary(workers);
} else {
  await runWorker();
}

type Summary = Record<string, Record<string, number>>;

/** The cluster primary: forks the workers, reports ready when all listen, sums their summaries on SIGTERM. */
function runPrimary(n: number): void {
  const summaries: Summary[] = [];
  let stoppingPrimary = false;
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    listening += 1;
    if (listening === n) process.stdout.write(`${JSON.stringify({ ready: true, port: address.port, workers: n })}\n`);
  });
  cluster.on('message', (_worker, message: unknown) => {
    if (typeof message === 'object' && message !== null && 'summary' in message) summaries.push((message as { summary: Summary }).summary);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stoppingPrimary) {
      console.error(`tagwarden bench primary: worker ${worker.id} exited (${code ?? signal}) before the stop; stopping`);
      process.exit(1);
    }
  });
  for (let i = 0; i < n; i++) cluster.fork();
  process.on('SIGTERM', () => {
    if (stoppingPrimary) return;
    stoppingPrimary = true;
    const all = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    void Promise.all(
      all.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    ).then(() => {
      const total: Summary = {};
      for (const s of summaries) {
        for (const [metric, values] of Object.entries(s)) {
          const into = (total[metric] ??= {});
          for (const [k, v] of Object.entries(values)) into[k] = (into[k] ?? 0) + v;
        }
      }
      process.stdout.write(`${JSON.stringify({ summary: total, workers: summaries.length })}\n`, () => process.exit(0));
    });
  });
}

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
    app.handler(req, res);
  });
  // A worker's listening is reported by the primary (once all listen), its summary sent to it.
  const port = process.argv.includes('--port') ? Number(arg('port')) : config.server.port;
  const reusePort = process.argv.includes('--reuse-port') ? { reusePort: true, exclusive: true } : {};
  server.listen({ port, host: config.server.host, ...reusePort }, () => {
    if (!cluster.isWorker) reportReady(server);
    link?.listening();
  });

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
