/**
 * Ingest benchmark: hits/s and latency of `POST /v1/track` for Tagwarden against two baselines.
 *
 * Every server runs in its own child process (bench/servers/*.ts); the load generator (autocannon)
 * runs here, one target after the other, with the same duration and connections and a warm-up run
 * first. Tagwarden delivers to a local sink (bench/servers/sink.ts, another child) standing in for
 * Meta, GA4 and the webhook, which counts the vendor requests and the events in them.
 *
 * This is a benchmark, not a test: it prints whether the targets hold and never fails because of them.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { markdownTable, responseTally } from './tally.ts';
import { startChild, type ChildHandle } from './children.ts';
import { eventFactory, ga4Factory, pixelFactory, type BenchClient, type EventFactory } from './event.ts';
import { pacedLoad } from './paced.ts';
import { summarizeProfile } from './profile-summary.ts';
import { machineBusySeconds, processTreeCpu, treeCpuDelta, type CpuTimes } from './proc-cpu.ts';
import type { SinkPathStats } from './servers/sink.ts';
import { workersUnsupported } from './servers/config.ts';
import { issueRatioLines } from './issue-ratios.ts';

export type TargetName = 'tagwarden' | 'receipts' | 'storeonly' | 'nojournal' | 'ingest' | 'forward' | 'naiveproxy' | 'workers2' | 'express' | 'raw';
/**
 * The default sequence (`npm run bench`): every target the issue's ratios need, `storeonly` only
 * when asked for. workers2 is skipped, with a message, by a build whose config lacks server.workers.
 */
export const TARGET_NAMES: readonly TargetName[] = ['tagwarden', 'nojournal', 'receipts', 'workers2', 'ingest', 'forward', 'naiveproxy', 'express', 'raw'];
export const KNOWN_TARGETS: readonly TargetName[] = ['tagwarden', 'receipts', 'storeonly', 'nojournal', 'ingest', 'forward', 'naiveproxy', 'workers2', 'express', 'raw'];
const JOURNAL_MODE: Partial<Record<TargetName, string>> = { tagwarden: 'on', receipts: 'on', storeonly: 'store', nojournal: 'off', ingest: 'off', forward: 'on', workers2: 'on' };
/** The targets that are Tagwarden (with a sink and counters), with or without its journal and store. */
const isTagwarden = (name: TargetName): boolean => JOURNAL_MODE[name] !== undefined;
/** The targets that send to the sink: Tagwarden's, and the naive proxy. */
const usesSink = (name: TargetName): boolean => isTagwarden(name) || name === 'naiveproxy';
/** Targets whose destinations are fixed, whatever --destinations says. */
const FIXED_DESTINATIONS: Partial<Record<TargetName, readonly string[]>> = { ingest: [], forward: ['webhook'], naiveproxy: ['webhook'] };
/** `server.workers` of the clustered targets. */
const WORKERS: Partial<Record<TargetName, number>> = { workers2: 2 };

/** The destinations a target sends each hit to (ids among meta, ga4, webhook; the naive proxy's one is the webhook's path). */
export function destinationsOf(name: TargetName, o: Pick<IngestOptions, 'destinations'>): readonly string[] {
  return FIXED_DESTINATIONS[name] ?? (isTagwarden(name) ? o.destinations : []);
}

/** Tagwarden must keep at least this share of the Express baseline's hits/s... */
export const MIN_THROUGHPUT_RATIO = 0.7;
/** ...and its p99 latency must stay within this multiple of the baseline's. */
export const MAX_P99_RATIO = 2;
/** The journal may cost at most this share of Tagwarden's hits/s (issue 11's goal). */
export const MAX_JOURNAL_COST = 0.15;
/** Decision receipts may cost at most this share of Tagwarden's hits/s (issue 15's goal). */
export const MAX_RECEIPTS_COST = 0.1;

const TARGETS: Record<TargetName, { label: string; script: string; does: string }> = {
  tagwarden: {
    label: 'tagwarden',
    script: 'servers/tagwarden.ts',
    does:
      'full pipeline: validates the Segment event, reads consent, decides per destination (meta-capi, ga4, webhook), ' +
      'renders each template (SHA-256 of the email for Meta), batches and delivers to the sink; answers 200 {"success":true} ' +
      'once the hit is committed to the delivery journal (SQLite file, group commit)',
  },
  receipts: {
    label: 'tagwarden (receipts on)',
    script: 'servers/tagwarden.ts',
    does: 'tagwarden (journal on) with receipts.enabled: a decision receipt per event x destination, buffered and written in batches, with its delivery result',
  },
  storeonly: {
    label: 'tagwarden (store, journal off)',
    script: 'servers/tagwarden.ts',
    does: 'the same pipeline with the consent store (lookups, re-checks before each send) but delivery.journal off: the journal\'s own cost is tagwarden minus this',
  },
  nojournal: {
    label: 'tagwarden (journal off)',
    script: 'servers/tagwarden.ts',
    does: 'the same pipeline with delivery.journal off (no store): hits answered before anything is durable, as before the journal',
  },
  ingest: {
    label: 'tagwarden ingest (no destinations)',
    script: 'servers/tagwarden.ts',
    does: 'ingest alone: validates the event, reads consent, counts it and answers 200; no destinations, no store (journal off)',
  },
  forward: {
    label: 'tagwarden forward (webhook only)',
    script: 'servers/tagwarden.ts',
    does: 'the forward path: one destination, the webhook template pointed at the sink; journal on (answered once the hit is durable), batched delivery after the answer',
  },
  naiveproxy: {
    label: 'naive proxy (baseline)',
    script: 'servers/naive-proxy.ts',
    does: 'Express 5 + http-proxy-middleware: express.json(), then each hit proxied to the sink\'s /webhook as {"batch":[event]}; answers with the sink\'s answer (waits for the vendor)',
  },
  workers2: {
    label: 'tagwarden (2 workers)',
    script: 'servers/workers.ts',
    does: 'tagwarden (journal on) as server.workers: 2 runs it: the real supervisor (src/cluster/supervisor.ts, round-robin) and two workers sharing one SQLite store and journal; CPU summed over the process tree',
  },
  express: {
    label: 'express (baseline)',
    script: 'servers/express.ts',
    does: 'bare Express 5 app: express.json() parses the body, answers 204; no validation, consent or delivery',
  },
  raw: {
    label: 'node:http (baseline)',
    script: 'servers/raw.ts',
    does: 'bare node:http server: reads the body without parsing it, answers 204',
  },
};

export interface IngestOptions {
  /** Which client's hits to send: Segment track events (default), GA4 /g/collect or Meta pixel /tr. */
  client?: BenchClient;
  durationSec: number;
  warmupSec: number;
  connections: number;
  /** Times the whole sequence of targets is run; ratios use the median of each target. */
  rounds: number;
  /** Distinct visitors the hits cycle over. */
  visitors: number;
  /**
   * Fixed offered load (requests/s over all connections) instead of "as fast as possible". At
   * saturation latency is only queueing (connections / throughput); at a rate every target can
   * sustain, the percentiles show what a hit really costs.
   */
  rate?: number;
  targets: readonly TargetName[];
  /** Tagwarden's log level (logging each hit would dominate). */
  logLevel: string;
  /** Tagwarden's destinations (ids among meta, ga4, webhook); empty = ingest only. */
  destinations: readonly string[];
  eventName: string;
  /** When set, every target runs with --cpu-prof writing here, and Tagwarden's profile is summarised. */
  profileDir?: string;
  /**
   * The sink answers each vendor request this long after reading it (bench/servers/sink.ts
   * --delay-ms; default 0): a vendor's round trip from a real deployment (tens of ms to Meta's or
   * Google's endpoints), which a proxy that waits for the vendor before answering pays per hit.
   */
  sinkDelayMs?: number;
}

export interface Measurement {
  target: TargetName;
  round: number;
  durationSec: number;
  /** 2xx responses per second of the measured run. */
  hitsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  ok: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  /** CPU used by the target process during the measured run, in cores (1 = one core busy). */
  targetCpu: number | undefined;
  /** CPU time the target process spent per 2xx response, in microseconds. */
  targetCpuUsPerHit: number | undefined;
  /**
   * The part of it in user mode (the target's own code, JavaScript and libuv): what is left is the
   * kernel's work for it, mostly loopback TCP and waking the peer, which every target pays per response.
   */
  targetUserUsPerHit: number | undefined;
  /** CPU used by the sink process (targets using one), in cores. */
  sinkCpu: number | undefined;
  /** CPU used by this process (the load generator), in cores. */
  generatorCpu: number;
  /** CPU busy on the whole machine (all processes and the kernel), in cores. */
  machineCpu: number | undefined;
}

export interface TagwardenExtras {
  target: TargetName;
  round: number;
  sink: Record<string, SinkPathStats>;
  /** Counters Tagwarden printed on shutdown (warm-up included). */
  counters: Record<string, Record<string, number>> | undefined;
  exit: string;
  stderr: { lines: number; head: string[] };
  /** The journal's group commits over the measured run alone (from /metrics before and after it); undefined without a journal. */
  journal: JournalRun | undefined;
}

/** Transactions and the hits (rows) they committed during one measured run. */
export interface JournalRun {
  transactions: number;
  hits: number;
  seconds: number;
}

export interface IngestReport {
  options: IngestOptions;
  bodyBytes: number;
  measurements: Measurement[];
  /** What the sink received for each run of a target using it (Tagwarden's targets and the naive proxy). */
  tagwarden: TagwardenExtras[];
  /** Targets asked for that could not run here, and why. */
  skipped: { target: TargetName; reason: string }[];
  /** Cores already busy on the machine in the second before the bench started (other processes). */
  busyBefore: number | undefined;
  /** CPU profiles written (with --profile), and the summary of Tagwarden's last one. */
  profiles: { target: TargetName; round: number; file: string }[];
  profileSummary?: string[];
}

const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface LoadRun {
  factory: EventFactory;
  next: { seq: number };
  port: number;
  seconds: number;
  connections: number;
  rate?: number | undefined;
  /** Processes whose CPU time is measured over the run. */
  watch: Record<string, number | undefined>;
}

export async function load(run: LoadRun): Promise<Omit<Measurement, 'target' | 'round'>> {
  const tally = responseTally();
  // Each watched process with its descendants: a clustered target's workers are children of its pid.
  const cpuBefore = Object.fromEntries(Object.entries(run.watch).map(([k, pid]) => [k, pid === undefined ? undefined : processTreeCpu(pid)]));
  const ownBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  const started = performance.now();

  const onResponse = (status: number, ms: number): void => tally.add(status, ms);
  const headers = { 'content-type': run.factory.contentType, 'user-agent': 'tagwarden-bench' };
  let result: { duration: number; errors: number; timeouts: number };
  if (run.rate !== undefined) {
    result = await pacedLoad({
      url: `http://127.0.0.1:${run.port}`,
      path: run.factory.path,
      rate: run.rate,
      seconds: run.seconds,
      connections: run.connections,
      headers,
      body: () => run.factory.body(run.next.seq++),
      onResponse,
    });
  } else {
    const instance = autocannon({
      url: `http://127.0.0.1:${run.port}${run.factory.path}`,
      method: 'POST',
      connections: run.connections,
      duration: run.seconds,
      timeout: 10,
      headers,
      requests: [{ setupRequest: (req) => ({ ...req, body: run.factory.body(run.next.seq++) }) }],
    });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(status, ms));
    result = await instance;
  }

  const wallSec = (performance.now() - started) / 1000;
  const own = process.cpuUsage(ownBefore);
  const machineAfter = machineBusySeconds();
  const cpuAfter = Object.fromEntries(Object.entries(run.watch).map(([k, pid]) => [k, pid === undefined ? undefined : processTreeCpu(pid)]));
  const cores = (k: string, part: keyof CpuTimes = 'total'): number | undefined => {
    const before = cpuBefore[k];
    const after = cpuAfter[k];
    return before === undefined || after === undefined ? undefined : treeCpuDelta(before, after, part) / wallSec;
  };
  const targetCpu = cores('target');
  const targetUser = cores('target', 'user');
  const { ok, non2xx, statusCodes } = tally;
  const sorted = Float64Array.from(tally.latencies).sort();
  return {
    durationSec: result.duration,
    hitsPerSec: ok / result.duration,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length === 0 ? NaN : sorted[sorted.length - 1]!,
    ok,
    non2xx,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    targetCpu,
    targetCpuUsPerHit: ok === 0 || targetCpu === undefined ? undefined : (targetCpu * wallSec * 1e6) / ok,
    targetUserUsPerHit: ok === 0 || targetUser === undefined ? undefined : (targetUser * wallSec * 1e6) / ok,
    sinkCpu: cores('sink'),
    generatorCpu: (own.user + own.system) / 1e6 / wallSec,
    machineCpu: machineBefore === undefined || machineAfter === undefined ? undefined : (machineAfter - machineBefore) / wallSec,
  };
}

async function sinkStats(sink: ChildHandle): Promise<Record<string, SinkPathStats>> {
  const res = await fetch(`http://127.0.0.1:${sink.port}/__stats`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as Record<string, SinkPathStats>;
}

/** Tagwarden's journal counters now (its /metrics, Prometheus text); undefined when it has no journal. */
async function journalCounters(port: number): Promise<{ transactions: number; hits: number } | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  const value = (name: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };
  const transactions = value('tagwarden_journal_commits_total');
  const hits = value('tagwarden_journal_hits_total');
  return transactions === undefined || hits === undefined || (transactions === 0 && hits === 0) ? undefined : { transactions, hits };
}

async function resetSink(sink: ChildHandle): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${sink.port}/__reset`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
}

const profileName = (target: TargetName, round: number): string => `${target}-round${round}-${process.pid}.cpuprofile`;

/** Runs one target: start it (and the sink for Tagwarden), warm up, measure, stop. */
async function runTarget(
  name: TargetName,
  round: number,
  o: IngestOptions,
  factory: EventFactory,
  next: { seq: number },
  log: (line: string) => void,
): Promise<{ m: Measurement; extras?: TagwardenExtras }> {
  let sink: ChildHandle | undefined;
  let server: ChildHandle | undefined;
  try {
    let args: string[] = [];
    if (usesSink(name)) {
      sink = await startChild('sink', here('./servers/sink.ts'), o.sinkDelayMs === undefined || o.sinkDelayMs === 0 ? [] : ['--delay-ms', String(o.sinkDelayMs)]);
      args = ['--sink', `http://127.0.0.1:${sink.port}`];
    }
    if (isTagwarden(name)) {
      const destinations = destinationsOf(name, o);
      args.push('--log', o.logLevel, '--destinations', destinations.length === 0 ? 'none' : destinations.join(','), '--journal', JOURNAL_MODE[name] ?? 'off');
      if (name === 'receipts') args.push('--receipts');
      // A clustered target: bench/servers/workers.ts supervises, and passes what follows `--` to each worker.
      const workers = WORKERS[name];
      if (workers !== undefined) args = ['--workers', String(workers), '--mode', 'round-robin', '--', ...args];
    }
    const nodeArgs = o.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${profileName(name, round)}`];
    server = await startChild(name, here(`./${TARGETS[name].script}`), args, { nodeArgs });
    const tag = o.rounds > 1 ? `[round ${round}/${o.rounds}] ${TARGETS[name].label}` : TARGETS[name].label;
    log(`${tag}: pid ${server.pid}, port ${server.port}; warm-up ${o.warmupSec}s`);
    const common = { factory, next, port: server.port, connections: o.connections, rate: o.rate };
    await load({ ...common, seconds: o.warmupSec, watch: {} });
    // Let the warm-up's batches (lingering up to 500 ms) reach the sink before counting from zero.
    await sleep(isTagwarden(name) ? 1_500 : 500);
    if (sink !== undefined) await resetSink(sink);
    log(`${tag}: measuring ${o.durationSec}s with ${o.connections} connections`);
    // A clustered target's /metrics adds up its workers' (src/cluster/aggregate.ts).
    const countJournal = isTagwarden(name);
    const journalBefore = countJournal ? await journalCounters(server.port) : undefined;
    const measured = await load({ ...common, seconds: o.durationSec, watch: { target: server.pid, sink: sink?.pid } });
    const m: Measurement = { target: name, round, ...measured };
    if (sink === undefined) return { m };
    const journalAfter = countJournal ? await journalCounters(server.port) : undefined;
    const journal =
      journalAfter === undefined
        ? undefined
        : { transactions: journalAfter.transactions - (journalBefore?.transactions ?? 0), hits: journalAfter.hits - (journalBefore?.hits ?? 0), seconds: measured.durationSec };

    // SIGTERM makes Tagwarden flush its batches (like a deploy would), then print its counters;
    // the naive proxy has nothing pending (each hit waited for the sink).
    const exit = await server.stop();
    const summary = server.messages.find((x): x is { summary: Record<string, Record<string, number>> } => typeof x === 'object' && x !== null && 'summary' in x);
    return { m, extras: { target: name, round, sink: await sinkStats(sink), counters: summary?.summary, exit, stderr: server.stderr, journal } };
  } finally {
    await server?.stop();
    await sink?.stop();
  }
}

/** Why a target cannot run in this build or with this client; undefined when it can. */
function skipReason(name: TargetName, client: BenchClient): string | undefined {
  const workers = WORKERS[name];
  if (workers !== undefined) {
    const why = workersUnsupported(workers);
    if (why !== undefined) return `${why}; it needs the node:cluster support of issue 16 (server.workers)`;
  }
  if (name === 'naiveproxy' && client !== 'segment') return 'the naive proxy takes Segment hits (POST /v1/track) only';
  return undefined;
}

export async function runIngestBench(o: IngestOptions, log: (line: string) => void = (l) => console.error(l)): Promise<IngestReport> {
  const runId = Math.random().toString(36).slice(2, 8);
  const client = o.client ?? 'segment';
  const factory = client === 'ga4' ? ga4Factory(runId, o.visitors) : client === 'pixel' ? pixelFactory(runId, o.visitors) : eventFactory(runId, o.visitors, o.eventName);
  const next = { seq: 0 };
  const before = machineBusySeconds();
  await sleep(1_000);
  const after = machineBusySeconds();
  const busyBefore = before === undefined || after === undefined ? undefined : after - before;
  const report: IngestReport = {
    options: o,
    bodyBytes: Buffer.byteLength(factory.body(123_456)),
    measurements: [],
    tagwarden: [],
    skipped: [],
    busyBefore,
    profiles: [],
  };
  for (const name of o.targets) {
    const why = skipReason(name, client);
    if (why !== undefined) {
      report.skipped.push({ target: name, reason: why });
      log(`${TARGETS[name].label}: SKIPPED: ${why}`);
    }
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const name of o.targets) {
      if (report.skipped.some((x) => x.target === name)) continue;
      const { m, extras } = await runTarget(name, round, o, factory, next, log);
      report.measurements.push(m);
      if (extras !== undefined) report.tagwarden.push(extras);
    }
  }
  if (o.profileDir !== undefined) {
    for (let round = 1; round <= o.rounds; round++) {
      for (const target of o.targets) {
        const file = join(o.profileDir, profileName(target, round));
        if (existsSync(file)) report.profiles.push({ target, round, file });
      }
    }
    const tw = report.profiles.findLast((p) => p.target === 'tagwarden');
    if (tw !== undefined) report.profileSummary = summarizeProfile(tw.file, 25);
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Printing

const fmt = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const pctCore = (n: number | undefined): string => (n === undefined ? 'n/a' : `${(n * 100).toFixed(0)}%`);

/** Other processes or the kernel kept this much CPU busy besides the bench's own processes (cores). */
function otherLoad(m: Measurement): number | undefined {
  if (m.machineCpu === undefined || m.targetCpu === undefined) return undefined;
  return Math.max(0, m.machineCpu - m.targetCpu - (m.sinkCpu ?? 0) - m.generatorCpu);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}


/** A target's figures over the rounds: the median of each. */
export interface TargetSummary {
  target: TargetName;
  hitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerHit: number | undefined;
  /** Of which in user mode (Measurement.targetUserUsPerHit). */
  userUsPerHit: number | undefined;
  /** CPU of the load generator, and of the sink (targets using one), per 2xx response: the other terms of the cores formula. */
  generatorUsPerHit: number | undefined;
  sinkUsPerHit: number | undefined;
  non2xx: number;
  errors: number;
}

export function summarize(report: IngestReport): TargetSummary[] {
  return report.options.targets.flatMap((target) => {
    const ms = report.measurements.filter((m) => m.target === target);
    if (ms.length === 0) return [];
    const perHit = (cores: (m: Measurement) => number | undefined): number | undefined =>
      ms.some((m) => cores(m) === undefined || m.ok === 0) ? undefined : median(ms.map((m) => (cores(m)! * 1e6) / m.hitsPerSec));
    return [
      {
        target,
        hitsPerSec: median(ms.map((m) => m.hitsPerSec)),
        p50Ms: median(ms.map((m) => m.p50Ms)),
        p99Ms: median(ms.map((m) => m.p99Ms)),
        cpuUsPerHit: ms.some((m) => m.targetCpuUsPerHit === undefined) ? undefined : median(ms.map((m) => m.targetCpuUsPerHit!)),
        userUsPerHit: ms.some((m) => m.targetUserUsPerHit === undefined) ? undefined : median(ms.map((m) => m.targetUserUsPerHit!)),
        generatorUsPerHit: perHit((m) => m.generatorCpu),
        sinkUsPerHit: perHit((m) => m.sinkCpu),
        non2xx: ms.reduce((n, m) => n + m.non2xx, 0),
        errors: ms.reduce((n, m) => n + m.errors + m.timeouts, 0),
      },
    ];
  });
}

export interface Verdict {
  throughputRatio: number;
  p99Ratio: number;
  throughputHolds: boolean;
  p99Holds: boolean;
}

export function verdict(summaries: readonly TargetSummary[]): Verdict | undefined {
  const tw = summaries.find((m) => m.target === 'tagwarden');
  const ex = summaries.find((m) => m.target === 'express');
  if (tw === undefined || ex === undefined) return undefined;
  const throughputRatio = tw.hitsPerSec / ex.hitsPerSec;
  const p99Ratio = tw.p99Ms / ex.p99Ms;
  return { throughputRatio, p99Ratio, throughputHolds: throughputRatio >= MIN_THROUGHPUT_RATIO, p99Holds: p99Ratio <= MAX_P99_RATIO };
}

/** Events the sink received per destination path of a target, against its acknowledged hits. */
export interface DeliveryCheck {
  /** Acknowledged (2xx) hits of the measured run. */
  acknowledged: number;
  /** Per destination: events received on its path. */
  received: Record<string, number>;
  /** Acknowledged events no path received (summed over the destinations): 0 when every one arrived. */
  missing: number;
}

export function deliveryCheck(destinations: readonly string[], sink: Readonly<Record<string, SinkPathStats>>, acknowledged: number): DeliveryCheck {
  const received: Record<string, number> = {};
  let missing = 0;
  for (const d of destinations) {
    const n = sink[`/${d}`]?.events ?? 0;
    received[d] = n;
    missing += Math.max(0, acknowledged - n);
  }
  return { acknowledged, received, missing };
}

function sinkLines(o: IngestOptions, tw: TagwardenExtras, ok: number): string[] {
  const destinations = destinationsOf(tw.target, o);
  const n = destinations.length;
  const out: string[] = [];
  let events = 0;
  out.push(
    ...markdownTable(
      ['path', 'vendor requests', 'events', 'events/request', 'largest batch', 'KiB'],
      Object.keys(tw.sink)
        .sort()
        .map((p) => {
          const s = tw.sink[p]!;
          events += s.events;
          return [p, String(s.requests), String(s.events), fmt(s.events / s.requests, 1), String(s.largestBatch), fmt(s.bytes / 1024)];
        }),
    ),
  );
  out.push(
    `events delivered: ${events}; expected about ${ok * n} (${n} destinations x ${ok} acknowledged hits; ` +
      `up to ${o.connections * n} more come from hits in flight when the run stopped)`,
  );
  if (n > 0) {
    const check = deliveryCheck(destinations, tw.sink, ok);
    out.push(
      check.missing === 0
        ? 'every acknowledged hit reached every destination: yes'
        : `WARNING: ${check.missing} acknowledged events did not reach the sink (${Object.entries(check.received).map(([d, r]) => `${d} ${r} of ${ok}`).join(', ')})`,
    );
  }
  return out;
}

const HIT_LABEL: Record<BenchClient, (bytes: number) => string> = {
  segment: (b) => `POST /v1/track, ${b}-byte Segment track event`,
  ga4: (b) => `POST /g/collect, ${b}-byte GA4 hit (gtag.js, text/plain, gcs=G111)`,
  pixel: (b) => `POST /tr, ${b}-byte Meta pixel hit (form-encoded, gcs=G111)`,
};

/** One ratio line: a over b, for req/s and CPU per hit (with the difference in µs). */
function ratioLine(name: string, a: TargetSummary, b: TargetSummary, goal = ''): string {
  const cpu =
    a.cpuUsPerHit === undefined || b.cpuUsPerHit === undefined
      ? 'CPU per hit n/a'
      : `CPU per hit ${(a.cpuUsPerHit / b.cpuUsPerHit).toFixed(2)}x (${a.cpuUsPerHit >= b.cpuUsPerHit ? '+' : ''}${(a.cpuUsPerHit - b.cpuUsPerHit).toFixed(0)} us)`;
  return `  ${name.padEnd(34)} req/s ${(a.hitsPerSec / b.hitsPerSec).toFixed(2)}, ${cpu}${goal}`;
}

/**
 * The journal's figures: its transactions over each measured run (transactions/s, hits per
 * transaction), and the ratios of the journal on against off (no store, store only) and Express.
 */
function journalLines(report: IngestReport, summaries: readonly TargetSummary[]): string[] {
  const o = report.options;
  const out: string[] = [];
  const runs = report.tagwarden.filter((tw) => tw.journal !== undefined && tw.journal.transactions > 0);
  if (runs.length > 0) {
    out.push('');
    out.push('journal, measured runs only (from /metrics before and after; rows = hits):');
    const rows = runs.map((tw) => {
      const j = tw.journal!;
      return [`${TARGETS[tw.target].label}${o.rounds > 1 ? ` #${tw.round}` : ''}`, String(j.transactions), fmt(j.transactions / j.seconds), String(j.hits), fmt(j.hits / j.transactions, 1)];
    });
    if (runs.length > 1) {
      rows.push(['median', '', fmt(median(runs.map((tw) => tw.journal!.transactions / tw.journal!.seconds))), '', fmt(median(runs.map((tw) => tw.journal!.hits / tw.journal!.transactions)), 1)]);
    }
    out.push(...markdownTable(['target', 'transactions', 'transactions/s', 'hits', 'hits per transaction'], rows));
  }
  const on = summaries.find((x) => x.target === 'tagwarden');
  if (on === undefined) return out;
  const off = summaries.find((x) => x.target === 'nojournal');
  const store = summaries.find((x) => x.target === 'storeonly');
  const ex = summaries.find((x) => x.target === 'express');
  const lines: string[] = [];
  if (off !== undefined) {
    const ratio = on.hitsPerSec / off.hitsPerSec;
    const goal = 1 - MAX_JOURNAL_COST;
    lines.push(ratioLine('journal on / journal off (no store)', on, off, `  (goal: req/s >= ${goal.toFixed(2)}) ${ratio >= goal ? 'HOLDS' : 'MISSED'}`));
  }
  if (store !== undefined) lines.push(ratioLine('journal on / store only', on, store, '  (the journal\'s own cost)'));
  if (store !== undefined && off !== undefined) lines.push(ratioLine('store only / no store', store, off, '  (the store\'s: lookups, re-checks)'));
  if (ex !== undefined && on.cpuUsPerHit !== undefined && ex.cpuUsPerHit !== undefined) {
    const cpu = on.cpuUsPerHit / ex.cpuUsPerHit;
    lines.push(ratioLine('journal on / express', on, ex, `  (goal: CPU per hit <= 2x) ${cpu <= 2 ? 'HOLDS' : 'MISSED'}`));
    if (off?.cpuUsPerHit !== undefined) lines.push(ratioLine('journal off (no store) / express', off, ex, '  (the floor without a journal)'));
  }
  const rec = summaries.find((x) => x.target === 'receipts');
  if (rec !== undefined) {
    const goal = 1 - MAX_RECEIPTS_COST;
    const ratio = rec.hitsPerSec / on.hitsPerSec;
    lines.push(ratioLine('receipts on / receipts off', rec, on, `  (goal: req/s >= ${goal.toFixed(2)}) ${ratio >= goal ? 'HOLDS' : 'MISSED'}`));
  }
  if (lines.length > 0) {
    out.push('');
    out.push(`journal ratios${o.rounds > 1 ? ` (medians over ${o.rounds} rounds)` : ''}:`);
    out.push(...lines);
  }
  return out;
}

export function formatReport(report: IngestReport): string[] {
  const o = report.options;
  const out: string[] = [];
  out.push(
    `${HIT_LABEL[o.client ?? 'segment'](report.bodyBytes)}, ${o.connections} connections, ` +
      `${o.warmupSec}s warm-up then ${o.durationSec}s measured per target${o.rounds > 1 ? `, ${o.rounds} rounds` : ''}, ${o.visitors} distinct visitors, ` +
      (o.rate === undefined ? 'as fast as possible (saturation)' : `fixed offered load ${o.rate} req/s`) +
      (o.sinkDelayMs === undefined || o.sinkDelayMs === 0 ? '' : `, the sink answering each vendor request after ${o.sinkDelayMs} ms`),
  );
  if (report.busyBefore !== undefined) {
    const warn = report.busyBefore > 0.2 ? ' -- WARNING: something else is running; figures will be noisy' : '';
    out.push(`machine busy in the second before the bench started: ${pctCore(report.busyBefore)} of a core${warn}`);
  }
  out.push('');
  for (const t of o.targets) out.push(`  ${TARGETS[t].label}: ${TARGETS[t].does}`);
  if (o.targets.some((t) => isTagwarden(t) && FIXED_DESTINATIONS[t] === undefined)) {
    out.push(`  destinations of tagwarden, nojournal, receipts, storeonly, workers2: ${o.destinations.length === 0 ? 'none (ingest only)' : o.destinations.join(', ')}`);
  }
  out.push('');
  const label = (m: Measurement): string => (o.rounds > 1 ? `${TARGETS[m.target].label} #${m.round}` : TARGETS[m.target].label);
  out.push(
    ...markdownTable(
      ['target', 'req/s (2xx)', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'CPU us/hit', 'user us/hit', 'target CPU', 'loadgen CPU', 'other CPU'],
      report.measurements.map((m) => [
        label(m),
        fmt(m.hitsPerSec),
        fmt(m.p50Ms, 2),
        fmt(m.p90Ms, 2),
        fmt(m.p99Ms, 2),
        fmt(m.maxMs, 1),
        String(m.ok),
        String(m.non2xx),
        String(m.errors + m.timeouts),
        fmt(m.targetCpuUsPerHit),
        fmt(m.targetUserUsPerHit),
        pctCore(m.targetCpu) + (m.sinkCpu === undefined ? '' : ` (+sink ${pctCore(m.sinkCpu)})`),
        pctCore(m.generatorCpu),
        pctCore(otherLoad(m)),
      ]),
    ),
  );
  out.push(
    'CPU us/hit: CPU time of the target process per 2xx response (less sensitive to other load than req/s); user us/hit:\n' +
      'the part in user mode, its own code (the rest is the kernel\'s work for it: loopback TCP, waking the peer). Other CPU\n' +
      'columns: % of one core over the measured run (2 cores = 200%); "other" is busy CPU not used by the bench\'s processes\n' +
      '(kernel loopback work, anything else running). Latency percentiles are computed from every 2xx response time.',
  );
  for (const m of report.measurements) {
    if (m.non2xx > 0) out.push(`  ${label(m)}: non-2xx status codes ${JSON.stringify(m.statusCodes)}`);
    const other = otherLoad(m);
    if (other !== undefined && other > 0.3) out.push(`  ${label(m)}: WARNING ${pctCore(other)} of a core went elsewhere during this run: figures are noisy`);
  }

  const summaries = summarize(report);
  if (o.rounds > 1) {
    out.push('');
    out.push(`medians over ${o.rounds} rounds:`);
    out.push(
      ...markdownTable(
        ['target', 'req/s (2xx)', 'p50 ms', 'p99 ms', 'CPU us/hit', 'user us/hit', 'non-2xx', 'errors'],
        summaries.map((s) => [
          TARGETS[s.target].label,
          fmt(s.hitsPerSec),
          fmt(s.p50Ms, 2),
          fmt(s.p99Ms, 2),
          fmt(s.cpuUsPerHit),
          fmt(s.userUsPerHit),
          String(s.non2xx),
          String(s.errors),
        ]),
      ),
    );
  }
  const v = verdict(summaries);
  out.push('');
  if (v === undefined) {
    out.push('ratios: need both tagwarden and express in --targets');
  } else {
    const mark = (ok: boolean): string => (ok ? 'HOLDS' : 'MISSED');
    if (o.rate === undefined) {
      out.push(`tagwarden / express req/s  : ${v.throughputRatio.toFixed(2)}  (target >= ${MIN_THROUGHPUT_RATIO})  ${mark(v.throughputHolds)}`);
    } else {
      // Under a fixed offered load both targets serve the same rate when they can: the ratio says
      // whether Tagwarden kept up, not how fast it could go.
      out.push(`tagwarden / express req/s  : ${v.throughputRatio.toFixed(2)}  (at a fixed ${o.rate} req/s: whether Tagwarden kept up, not its capacity)`);
    }
    out.push(`tagwarden p99 / express p99: ${v.p99Ratio.toFixed(2)}  (target <= ${MAX_P99_RATIO})  ${mark(v.p99Holds)}`);
    const tw = summaries.find((x) => x.target === 'tagwarden')!;
    const ex = summaries.find((x) => x.target === 'express')!;
    if (tw.cpuUsPerHit !== undefined && ex.cpuUsPerHit !== undefined) {
      out.push(`tagwarden / express CPU per hit: ${(tw.cpuUsPerHit / ex.cpuUsPerHit).toFixed(1)}x  (informational)`);
    }
    out.push(v.throughputHolds && v.p99Holds ? 'TARGETS HOLD' : 'TARGET MISSED (the bench still exits 0: it measures, it does not gate)');
  }
  out.push(...journalLines(report, summaries));
  const forwardRuns = report.tagwarden.filter((tw) => tw.target === 'forward');
  out.push(
    ...issueRatioLines({
      summaries,
      forwardMissing:
        forwardRuns.length === 0
          ? undefined
          : forwardRuns.reduce((n, tw) => n + deliveryCheck(destinationsOf('forward', o), tw.sink, report.measurements.find((x) => x.target === tw.target && x.round === tw.round)?.ok ?? 0).missing, 0),
      skipped: report.skipped,
      cores: availableParallelism(),
      fixedRate: o.rate !== undefined,
    }),
  );

  for (const tw of report.tagwarden) {
    const m = report.measurements.find((x) => x.target === tw.target && x.round === tw.round);
    if (m === undefined) continue;
    out.push('');
    out.push(
      `${TARGETS[tw.target].label}${o.rounds > 1 ? `, round ${tw.round}` : ''}: sink (fake vendors), from the start of the measured run until ${isTagwarden(tw.target) ? 'Tagwarden had flushed on shutdown' : 'the target stopped'} (${tw.exit}):`,
    );
    out.push(...sinkLines(o, tw, m.ok));
    const drops = Object.entries(tw.counters?.decisions ?? {}).filter(([k]) => k.split('/')[1] === 'drop');
    if (drops.length > 0) {
      out.push(`WARNING: Tagwarden dropped events instead of delivering them: ${drops.map(([k, n]) => `${k}=${n}`).join(', ')}`);
    }
    if (tw.counters !== undefined) {
      out.push('tagwarden counters (warm-up included):');
      for (const [name, values] of Object.entries(tw.counters)) {
        const parts = Object.entries(values).map(([k, n]) => `${k}=${n}`);
        out.push(`  ${name}: ${parts.length === 0 ? '(none)' : parts.join(', ')}`);
      }
    }
    if (tw.stderr.lines > 0) {
      out.push(`tagwarden wrote ${tw.stderr.lines} log/error lines to stderr; the first:`);
      for (const l of tw.stderr.head.slice(0, 5)) out.push(`  ${l.length > 300 ? `${l.slice(0, 300)}...` : l}`);
    }
  }
  if (report.profiles.length > 0) {
    out.push('');
    out.push('CPU profiles (the figures above were measured WITH the profiler on, so slower than usual):');
    for (const p of report.profiles) out.push(`  ${TARGETS[p.target].label} round ${p.round}: ${p.file}`);
    out.push('  summarise any of them with: node bench/profile-summary.ts <file>');
  }
  if (report.profileSummary !== undefined) {
    out.push('');
    out.push(...report.profileSummary);
  }
  return out;
}
