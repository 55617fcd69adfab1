/**
 * The report of bench/verify.ts: hits/s and latency per run, the upstream calls per hit (target
 * <= 0.1), per destination whether acknowledged = delivered + decided and whether its delivery
 * kept up (bench/keep-up.ts), Tagwarden's CPU per hit, a timeline of the queues, and the counters
 * Tagwarden printed at shutdown.
 */
import { BENCH_VERIFY_CATEGORIES, BENCH_VERIFY_REQUESTS_PER_MINUTE } from './servers/config.ts';
import type { SinkPathStats } from './servers/sink.ts';
import type { VerifyServerStats } from './servers/verify.ts';
import { DRAIN_BUDGET_MS, type KeepUp, type Sample } from './keep-up.ts';

/** Upstream calls per hit the issue asks for at most. */
const MAX_CALLS_PER_HIT = 0.1;
/** Rows of the printed timeline, about: longer runs are shown in coarser steps. */
const TIMELINE_ROWS = 24;

export type Mode = 'upstream' | 'carried';

export interface VerifyBenchOptions {
  hits: number;
  visitors: number;
  /** Paced load at this many hits/s; undefined: as fast as the connections go. */
  rate?: number;
  runs: Mode[];
  delayMs: number;
  vendorDelayMs: number;
  connections: number;
  destinations: string[];
  /** `--max-in-flight` as given (`ga4=64,meta=8`). */
  maxInFlight?: string;
  connectionsPerOrigin?: number;
  sampleMs: number;
  logLevel: string;
  /** Where Tagwarden's CPU profiles go (`--profile`). */
  profileDir?: string;
}

type Counters = Record<string, Record<string, number>>;

export interface RunResult {
  mode: Mode;
  seconds: number;
  /** 2xx answers per second. */
  hitsPerSec: number;
  ok: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** The verify server's counts, read after Tagwarden had shut down. */
  verify: VerifyServerStats;
  /** Milliseconds from the last hit's answer to the last verify request (negative: before it). */
  lastCallAfterLoadMs: number | undefined;
  sink: Record<string, SinkPathStats>;
  counters: Counters | undefined;
  exit: string;
  stderr: { lines: number; head: string[] };
  /** The sampler's timeline, from the start of the load until the queues were empty. */
  samples: Sample[];
  /** `t` of the sample taken when the last hit had been answered. */
  loadEndT: number;
  drainedAfterMs: number | undefined;
  /** Tagwarden's CPU time from the start of the load until the queues were empty, per 2xx hit. */
  cpuPerHitUs: number | undefined;
  keepUp: KeepUp[];
}

const fmt = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const int = (n: number): string => n.toLocaleString('en-US');

/** Sums a counter's values by the labels at `positions` (keys are label values joined by '/'). */
function sumBy(values: Record<string, number> | undefined, positions: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(values ?? {})) {
    const parts = key.split('/');
    const k = positions.map((i) => parts[i] ?? '?').join('/');
    out[k] = (out[k] ?? 0) + n;
  }
  return out;
}

const list = (values: Record<string, number>): string =>
  Object.entries(values).length === 0
    ? '(none)'
    : Object.entries(values)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `${k}=${n}`)
        .join(', ');

function runLines(r: RunResult, o: VerifyBenchOptions): string[] {
  const out: string[] = [];
  const c = r.counters;
  const decisions = c?.decisions;
  const byOutcome = sumBy(decisions, [1, 2]);
  const unresolved = Object.entries(decisions ?? {})
    .filter(([k]) => k.endsWith('/drop/consent_unresolved'))
    .reduce((n, [, v]) => n + v, 0);
  const forwarded = sumBy(decisions, [1]).forward ?? 0;
  const destinations = Object.keys(sumBy(decisions, [0])).length;
  out.push(`  tagwarden stopped with SIGTERM after the lookups settled (${r.exit}); its counters:`);
  if (c === undefined) {
    out.push('  WARNING: no shutdown summary from Tagwarden');
  } else {
    out.push(`    events received: ${list(c.events_received ?? {})}; rejected: ${list(c.events_rejected ?? {})}`);
    out.push(`    decisions (outcome/reason, all destinations): ${list(byOutcome)}`);
    out.push(
      `    forwarded: ${int(forwarded)} of ${int(r.ok * destinations)} (${destinations} destinations x ${int(r.ok)} acknowledged hits)` +
        `; dropped as consent_unresolved: ${int(unresolved)}`,
    );
    out.push(`    deliveries (outcome): ${list(sumBy(c.deliveries, [1]))}`);
    if (c.consent_lookups !== undefined) out.push(`    consent lookups: ${list(c.consent_lookups)}`);
  }
  const sinkEvents = Object.entries(r.sink)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, s]) => `${p} ${int(s.events)} in ${int(s.requests)} requests`);
  out.push(`    sink (fake vendors) received: ${sinkEvents.length === 0 ? '(nothing)' : sinkEvents.join(', ')}`);
  const otherDrops = Object.entries(sumBy(decisions, [1, 2])).filter(([k]) => k.startsWith('drop/') && k !== 'drop/consent_unresolved');
  if (unresolved > 0) {
    out.push(
      `  WARNING: ${int(unresolved)} decisions (${fmt((100 * unresolved) / Math.max(1, r.ok * destinations), 1)}%) dropped as consent_unresolved: those events were never forwarded`,
    );
  }
  if (otherDrops.length > 0) out.push(`  WARNING: decisions dropped for other reasons: ${otherDrops.map(([k, n]) => `${k.slice(5)}=${n}`).join(', ')}`);
  if (r.non2xx > 0) out.push(`  WARNING: non-2xx answers ${JSON.stringify(r.statusCodes)}`);
  if (r.errors > 0) out.push(`  WARNING: ${r.errors} connection errors or timeouts`);
  if (r.ok !== o.hits) out.push(`  WARNING: ${int(r.ok)} of ${int(o.hits)} hits acknowledged`);
  if (r.stderr.lines > 0) {
    out.push(`  tagwarden wrote ${r.stderr.lines} log/error lines to stderr; the first:`);
    for (const l of r.stderr.head.slice(0, 5)) out.push(`    ${l.length > 300 ? `${l.slice(0, 300)}...` : l}`);
  }
  return out;
}

export function formatVerifyReport(o: VerifyBenchOptions, results: readonly RunResult[]): string[] {
  const out: string[] = [];
  const a = results.find((r) => r.mode === 'upstream');
  const b = results.find((r) => r.mode === 'carried');
  const pace = o.rate === undefined ? `${o.connections} connections, as fast as possible` : `paced at ${int(o.rate)} hits/s (open loop, ${o.connections} connections)`;
  const named: Record<string, string> = { meta: 'meta: advertising', ga4: 'ga4: analytics', webhook: 'webhook: analytics' };
  const settings = [o.maxInFlight === undefined ? '' : `maxInFlight ${o.maxInFlight}`, o.connectionsPerOrigin === undefined ? '' : `connectionsPerOrigin ${o.connectionsPerOrigin}`].filter((x) => x !== '');
  out.push(
    `POST /v1/track: ${int(o.hits)} hits per run cycling over ${int(o.visitors)} visitors (anonymousId = visitor id; ` +
      `${fmt(o.hits / o.visitors, 1)} hits per visitor), ${pace}; ` +
      `Tagwarden with ${o.destinations.length} destinations (${o.destinations.map((d) => named[d] ?? d).join('; ') || 'none'}) delivering to a local sink ` +
      `answering ${o.vendorDelayMs > 0 ? `after ${o.vendorDelayMs} ms` : 'at once'}${settings.length > 0 ? `; ${settings.join(', ')}` : '; delivery settings at their defaults'}`,
  );
  out.push(
    `fake verify server: answers every visitor {hasConsent: true, all categories true} after ${o.delayMs} ms; ` +
      `upstream.verify.categories ${JSON.stringify(BENCH_VERIFY_CATEGORIES)}; requestsPerMinute ${int(BENCH_VERIFY_REQUESTS_PER_MINUTE)} ` +
      '(the schema maximum, so the rate budget is NOT the limit here; CookieBoss plans allow 100, 500 or 1,000); ' +
      'other upstream, hold and delivery settings at their defaults',
  );
  out.push('  (a) upstream: hits without a consent object: every visitor\'s consent comes from the verify API');
  out.push('  (b) carried : the same hits with context.consent.categoryPreferences granting advertising and analytics (same config)');
  out.push('');
  const pad = (s: string, n: number): string => s.padStart(n);
  out.push(`  run          ${pad('hits/s', 8)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('2xx', 8)} ${pad('non-2xx', 7)} ${pad('errors', 6)} ${pad('seconds', 7)} ${pad('verify calls', 12)}`);
  for (const r of results) {
    out.push(
      `  ${(r.mode === 'upstream' ? '(a) upstream' : '(b) carried').padEnd(12)} ${pad(fmt(r.hitsPerSec), 8)} ${pad(fmt(r.p50Ms, 2), 7)} ${pad(fmt(r.p99Ms, 2), 7)} ` +
        `${pad(String(r.ok), 8)} ${pad(String(r.non2xx), 7)} ${pad(String(r.errors), 6)} ${pad(fmt(r.seconds, 1), 7)} ${pad(String(r.verify.requests), 12)}`,
    );
  }
  out.push(
    `  (latency: ${o.rate === undefined ? "autocannon's response times" : 'from when each hit was due'}; Tagwarden answers once the hit is in the journal, before it decides, so lookups do not delay the answer)`,
  );
  out.push('');
  out.push(...keepUpLines(results));
  out.push('');
  if (a !== undefined && b !== undefined) {
    out.push(`hits/s upstream / carried: ${(a.hitsPerSec / b.hitsPerSec).toFixed(2)}  (informational; same machine, one run each)`);
  }
  if (a !== undefined) {
    const v = a.verify;
    const perHit = a.ok === 0 ? NaN : v.requests / a.ok;
    const holds = perHit <= MAX_CALLS_PER_HIT;
    out.push(
      `upstream calls (a): ${int(v.requests)} for ${int(a.ok)} acknowledged hits = ${fmt(perHit, 3)} per hit  (target <= ${MAX_CALLS_PER_HIT})  ${holds ? 'HOLDS' : 'MISSED'}`,
    );
    out.push(`  naive client (the CookieBoss example: one verify call per hit): ${int(o.hits)} calls = 1.000 per hit`);
    out.push(
      `  distinct visitors looked up: ${int(v.distinctVisitors)} of ${int(o.visitors)}; asked more than once: ${int(v.repeatedVisitors)}; ` +
        `peak requests in flight: ${v.maxInFlight}; 401/other: ${v.unauthorized}/${v.other}`,
    );
    if (v.firstAt !== undefined && v.lastAt !== undefined) {
      const span = (v.lastAt - v.firstAt) / 1000;
      out.push(
        `  verify requests spanned ${fmt(span, 1)} s (${fmt(span > 0 ? v.requests / span : NaN)} calls/s); the last one ` +
          `${a.lastCallAfterLoadMs === undefined ? 'n/a' : a.lastCallAfterLoadMs >= 0 ? `${fmt(a.lastCallAfterLoadMs / 1000, 1)} s after` : `${fmt(-a.lastCallAfterLoadMs / 1000, 1)} s before`} ` +
          'the last hit was answered',
      );
    }
    const unresolved = Object.entries(a.counters?.decisions ?? {})
      .filter(([k]) => k.endsWith('/drop/consent_unresolved'))
      .reduce((n, [, x]) => n + x, 0);
    out.push(`  decisions dropped as consent_unresolved in (a): ${int(unresolved)}`);
    if (holds && unresolved > 0) {
      out.push('  NOTE: the call count is low partly because lookups failed or were refused (see the lookup counters below), not only thanks to the cache');
    }
  }
  if (b !== undefined) out.push(`upstream calls (b): ${int(b.verify.requests)}  (every hit carries its consent: nothing to ask)`);
  for (const r of results) {
    out.push('');
    out.push(`${r.mode === 'upstream' ? '(a) upstream' : '(b) carried'}:`);
    out.push(...runLines(r, o));
    out.push(...timelineLines(r));
  }
  out.push('');
  out.push('This bench measures; it does not gate (exit 0 whatever the figures).');
  return out;
}


const label = (m: Mode): string => (m === 'upstream' ? '(a) upstream' : '(b) carried');

/** Per run and destination: acknowledged = delivered + decided, vendor requests/s, the queue, and the verdict. */
function keepUpLines(results: readonly RunResult[]): string[] {
  const out: string[] = [];
  out.push(`delivery per destination (keeps up: no hit refused, acknowledged = delivered + decided, queue empty within ${DRAIN_BUDGET_MS / 1000} s of the last hit):`);
  const pad = (s: string, n: number): string => s.padStart(n);
  out.push(
    `  run          dest     ${pad('acknowledged', 12)} ${pad('delivered', 9)} ${pad('decided', 7)} ${pad('parked', 6)} ${pad('requests', 8)} ${pad('ev/req', 6)} ${pad('req/s', 6)} ${pad('peak', 6)} ` +
      `${pad('max queue', 9)} ${pad('at end', 6)} ${pad('drained', 8)}  verdict`,
  );
  for (const r of results) {
    for (const k of r.keepUp) {
      const accounted = k.delivered + k.decided + k.parked === k.acknowledged;
      const verdict = k.keepsUp
        ? 'KEEPS UP'
        : !accounted
          ? 'LOST EVENTS'
          : k.drainedAfterMs === undefined || k.drainedAfterMs > DRAIN_BUDGET_MS
            ? `FALLS BEHIND${k.parked > 0 ? ` (${int(k.parked)} parked at shutdown, kept by the journal)` : ''}`
            : 'refused hits';
      out.push(
        `  ${label(r.mode).padEnd(12)} ${k.destination.padEnd(8)} ${pad(int(k.acknowledged), 12)} ${pad(int(k.delivered), 9)} ${pad(int(k.decided), 7)} ${pad(int(k.parked), 6)} ${pad(int(k.requests), 8)} ` +
          `${pad(fmt(k.requests > 0 ? k.events / k.requests : NaN, 1), 6)} ${pad(fmt(k.requestsPerSec), 6)} ${pad(fmt(k.peakRequestsPerSec), 6)} ${pad(int(k.maxQueued), 9)} ` +
          `${pad(int(k.queuedAtLoadEnd), 6)} ${pad(k.drainedAfterMs === undefined ? 'no' : `${fmt(k.drainedAfterMs / 1000, 1)} s`, 8)}  ${verdict}`,
      );
    }
    const refusedShare = r.ok + r.non2xx === 0 ? 0 : r.non2xx / (r.ok + r.non2xx);
    out.push(
      `  ${label(r.mode)}: ${int(r.non2xx)} hits refused (${fmt(100 * refusedShare, 1)}%); Tagwarden CPU ${fmt(r.cpuPerHitUs)} us per acknowledged hit ` +
        `(from the start of the load until the queues were empty); longest event-loop stall ${fmt(loopMax(r.samples, 0, r.samples.length - 1, 'maxMs'))} ms, longest GC pause ${fmt(loopMax(r.samples, 0, r.samples.length - 1, 'gcMaxMs'))} ms`,
    );
  }
  out.push(
    '  (parked: not yet sent when Tagwarden stopped, kept in the journal for after a restart; requests, ev/req, req/s, peak: what the sink received ' +
      'until the last hit was answered; peak: the busiest sampling interval)',
  );
  return out;
}

/** The sampled timeline of one run, in about TIMELINE_ROWS steps of equal time. */
function timelineLines(r: RunResult): string[] {
  const s = r.samples;
  if (s.length < 2) return [];
  const ids = [...new Set(s.flatMap((x) => Object.keys(x.queues ?? {})))].sort();
  // Rows by time, not by sample: the drain after the load is sampled far more often than the load.
  const span = s.at(-1)!.t - s[0]!.t;
  const rowSeconds = span / TIMELINE_ROWS;
  const pad = (v: string, n: number): string => v.padStart(n);
  const out: string[] = [];
  out.push(
    "  timeline (per second between rows; queue = events held by the destination at the row's time; CPU % of one core; " +
      'loop max, gc max = longest event-loop stall and GC pause since the row before, gc ms/s = time in GC; * = after the last hit):',
  );
  out.push(
    `    ${pad('t s', 6)} ${pad('sent/s', 7)} ${pad('2xx/s', 7)} ${pad('503/s', 7)} ` +
      ids.map((id) => `${pad(`${id} req/s`, id.length + 6)} ${pad(`${id} queue`, id.length + 6)}`).join(' ') +
      ` ${pad('CPU %', 6)} ${pad('loop max ms', 11)} ${pad('gc max ms', 9)} ${pad('gc ms/s', 7)}`,
  );
  const rows: number[] = [];
  for (let i = 1, from = s[0]!.t; i < s.length; i++) {
    if (s[i]!.t - from >= rowSeconds || i === s.length - 1) {
      rows.push(i);
      from = s[i]!.t;
    }
  }
  let prev = s[0]!;
  for (const i of rows) {
    const cur = s[i]!;
    const dt = cur.t - prev.t;
    if (dt <= 0) continue;
    const rate = (a: number, b: number): string => fmt((b - a) / dt);
    const cpu = cur.cpuS !== undefined && prev.cpuS !== undefined ? fmt((100 * (cur.cpuS - prev.cpuS)) / dt) : 'n/a';
    out.push(
      `    ${pad(`${fmt(cur.t, 1)}${cur.t > r.loadEndT + 1e-6 ? '*' : ' '}`, 6)} ${pad(rate(prev.sent, cur.sent), 7)} ${pad(rate(prev.ok, cur.ok), 7)} ${pad(rate(prev.refused, cur.refused), 7)} ` +
        ids
          .map((id) => `${pad(rate(prev.sink[`/${id}`]?.requests ?? 0, cur.sink[`/${id}`]?.requests ?? 0), id.length + 6)} ${pad(int(cur.queues?.[id]?.queued ?? 0), id.length + 6)}`)
          .join(' ') +
        ` ${pad(cpu, 6)} ${pad(fmt(loopMax(s, s.indexOf(prev), i, 'maxMs'), 0), 11)} ${pad(fmt(loopMax(s, s.indexOf(prev), i, 'gcMaxMs'), 0), 9)} ` +
        `${pad(fmt(gcTotal(s, s.indexOf(prev), i) / dt, 0), 7)}`,
    );
    prev = cur;
  }
  return out;
}

/** The largest `key` (event-loop stall, GC pause) sampled after sample `from` up to sample `to`. */
function loopMax(s: readonly Sample[], from: number, to: number, key: 'maxMs' | 'gcMaxMs'): number | undefined {
  let max: number | undefined;
  for (let i = from + 1; i <= to; i++) {
    const m = s[i]?.loop?.[key];
    if (m !== undefined) max = Math.max(max ?? 0, m);
  }
  return max;
}

/** GC pause time (ms) sampled after sample `from` up to sample `to`. */
function gcTotal(s: readonly Sample[], from: number, to: number): number {
  let total = 0;
  for (let i = from + 1; i <= to; i++) total += s[i]?.loop?.gcTotalMs ?? 0;
  return total;
}
