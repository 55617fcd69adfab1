/**
 * `npm run bench:verify`: consent the hits do not carry, looked up on a CookieBoss-compatible
 * verify API (docs/consent.md, "Consent the hit does not carry: the upstream verify API").
 *
 * Two runs, each against a fresh Tagwarden child, vendor sink (bench/servers/sink.ts) and fake
 * verify server (bench/servers/verify.ts, answering every visitor "consent to everything" after
 * `--delay-ms`), with the same config (`upstream.verify` pointing at the fake server):
 *
 *   (a) upstream: the hits carry no consent object, so every visitor's consent comes from the
 *       verify API (through Tagwarden's cache and single flight);
 *   (b) carried:  the same hits with `context.consent.categoryPreferences` granting advertising and
 *       analytics, so nothing is asked.
 *
 * Each run sends exactly `--hits` hits with autocannon (`amount`), as fast as `--connections`
 * keep-alive connections allow, cycling over `--visitors` visitors. It prints the hits/s of each
 * run and their ratio, the upstream calls per hit (target <= 0.1; the naive client of the
 * CookieBoss example makes 1 per hit), the distinct visitors looked up, and Tagwarden's decision,
 * delivery and lookup counters from its shutdown summary, with the consent_unresolved drops.
 *
 * Options:
 *   --hits <n>          hits per run (default 100000)
 *   --visitors <n>      distinct visitors the hits cycle over (default 10000)
 *   --delay-ms <n>      the verify server's answer time (default 20)
 *   --connections <n>   concurrent keep-alive connections (default 50)
 *   --log <level>       Tagwarden's log level (default warn)
 *
 * Exits 0 whether or not the target holds (a benchmark measures, it does not gate); exits 1 when
 * the bench itself could not run. Every child process is stopped on exit, and a watchdog ends a
 * run that takes far longer than planned.
 */
import { positive } from './args.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon, { type Options } from 'autocannon';
import { machineLine, responseTally, watchdog } from './tally.ts';
import { installExitHooks, startChild, type ChildHandle } from './children.ts';
import { eventFactory, type EventFactory } from './event.ts';
import { BENCH_VERIFY_CATEGORIES, BENCH_VERIFY_REQUESTS_PER_MINUTE } from './servers/config.ts';
import type { SinkPathStats } from './servers/sink.ts';
import type { VerifyServerStats } from './servers/verify.ts';

/** Upstream calls per hit the issue asks for at most. */
const MAX_CALLS_PER_HIT = 0.1;

type Mode = 'upstream' | 'carried';

interface VerifyBenchOptions {
  hits: number;
  visitors: number;
  delayMs: number;
  connections: number;
  logLevel: string;
}

type Counters = Record<string, Record<string, number>>;

interface RunResult {
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
}

const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));

async function getJson<T>(child: ChildHandle, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${child.port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as T;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Exactly `hits` POSTs of /v1/track, as fast as the connections allow. */
async function send(port: number, o: VerifyBenchOptions, factory: EventFactory) {
  let seq = 0;
  const tally = responseTally();
  // `amount` (autocannon 9: send this many requests, then stop) is not in bench/autocannon.d.ts.
  const options: Options & { amount: number } = {
    url: `http://127.0.0.1:${port}/v1/track`,
    method: 'POST',
    connections: o.connections,
    amount: o.hits,
    timeout: 10,
    headers: { 'content-type': 'application/json', 'user-agent': 'tagwarden-bench' },
    requests: [{ setupRequest: (req) => ({ ...req, body: factory.body(seq++) }) }],
  };
  const instance = autocannon(options);
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => tally.add(status, ms));
  const result = await instance;
  const { ok, non2xx, statusCodes } = tally;
  const sorted = Float64Array.from(tally.latencies).sort();
  return {
    seconds: result.duration,
    hitsPerSec: ok / result.duration,
    ok,
    non2xx,
    statusCodes,
    errors: result.errors + result.timeouts,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    endedAt: Date.now(),
  };
}

/** Waits until the verify server has nothing in flight and got no new request for 500 ms. */
async function lookupsSettled(verify: ChildHandle, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = await getJson<VerifyServerStats>(verify, '/__stats');
  let quietPolls = 0;
  while (Date.now() < deadline && quietPolls < 2) {
    await sleep(250);
    const now = await getJson<VerifyServerStats>(verify, '/__stats');
    quietPolls = now.inFlight === 0 && now.requests === last.requests ? quietPolls + 1 : 0;
    last = now;
  }
}

/** One run: fresh sink, verify server and Tagwarden; send the hits; stop Tagwarden; collect. */
async function runOnce(mode: Mode, o: VerifyBenchOptions, runId: string, log: (line: string) => void): Promise<RunResult> {
  let sink: ChildHandle | undefined;
  let verify: ChildHandle | undefined;
  let tagwarden: ChildHandle | undefined;
  try {
    sink = await startChild('sink', here('./servers/sink.ts'), []);
    verify = await startChild('verify', here('./servers/verify.ts'), ['--delay-ms', String(o.delayMs)]);
    tagwarden = await startChild('tagwarden', here('./servers/tagwarden.ts'), [
      '--sink',
      `http://127.0.0.1:${sink.port}`,
      '--verify',
      `http://127.0.0.1:${verify.port}`,
      '--log',
      o.logLevel,
    ]);
    log(`(${mode === 'upstream' ? 'a' : 'b'}) ${mode}: tagwarden pid ${tagwarden.pid}, sending ${o.hits} hits over ${o.connections} connections`);
    const factory = eventFactory(runId, o.visitors, 'purchase', new Date(), { consent: mode === 'carried' });
    const load = await send(tagwarden.port, o, factory);
    // Events still waiting for an answer would be dropped at shutdown: let the lookups finish
    // (bounded by the pending queue's 30 s age limit and the client's 2 s timeout).
    await lookupsSettled(verify, 40_000);
    // SIGTERM makes Tagwarden settle its lookups and flush its batches, then print its counters.
    const exit = await tagwarden.stop();
    const summary = tagwarden.messages.find((x): x is { summary: Counters } => typeof x === 'object' && x !== null && 'summary' in x);
    const verifyStats = await getJson<VerifyServerStats>(verify, '/__stats');
    return {
      mode,
      seconds: load.seconds,
      hitsPerSec: load.hitsPerSec,
      ok: load.ok,
      non2xx: load.non2xx,
      statusCodes: load.statusCodes,
      errors: load.errors,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      verify: verifyStats,
      lastCallAfterLoadMs: verifyStats.lastAt === undefined ? undefined : verifyStats.lastAt - load.endedAt,
      sink: await getJson<Record<string, SinkPathStats>>(sink, '/__stats'),
      counters: summary?.summary,
      exit,
      stderr: tagwarden.stderr,
    };
  } finally {
    await tagwarden?.stop();
    await verify?.stop();
    await sink?.stop();
  }
}

async function runVerifyBench(o: VerifyBenchOptions, log: (line: string) => void = (l) => console.error(l)): Promise<RunResult[]> {
  const runId = Math.random().toString(36).slice(2, 8);
  const results: RunResult[] = [];
  for (const mode of ['upstream', 'carried'] as const) results.push(await runOnce(mode, o, runId, log));
  return results;
}

// ---------------------------------------------------------------------------------------------
// Printing

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

function formatVerifyReport(o: VerifyBenchOptions, results: readonly RunResult[]): string[] {
  const out: string[] = [];
  const a = results.find((r) => r.mode === 'upstream');
  const b = results.find((r) => r.mode === 'carried');
  out.push(
    `POST /v1/track: ${int(o.hits)} hits per run cycling over ${int(o.visitors)} visitors (anonymousId = visitor id; ` +
      `${fmt(o.hits / o.visitors, 1)} hits per visitor), ${o.connections} connections, as fast as possible; ` +
      'Tagwarden with 3 destinations (meta: advertising; ga4, webhook: analytics) delivering to a local sink',
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
  out.push('  (latency: from autocannon\'s response times; Tagwarden answers before it decides, so lookups do not delay the answer)');
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
  }
  out.push('');
  out.push('This bench measures; it does not gate (exit 0 whatever the figures).');
  return out;
}

// ---------------------------------------------------------------------------------------------
// CLI


async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hits: { type: 'string', default: '100000' },
      visitors: { type: 'string', default: '10000' },
      'delay-ms': { type: 'string', default: '20' },
      connections: { type: 'string', default: '50' },
      log: { type: 'string', default: 'warn' },
    },
    strict: true,
  });
  const o: VerifyBenchOptions = {
    hits: positive('hits', values.hits, true),
    visitors: positive('visitors', values.visitors, true),
    delayMs: positive('delay-ms', values['delay-ms'], false, true),
    connections: positive('connections', values.connections, true),
    logLevel: values.log,
  };

  installExitHooks();
  // 2 runs, each allowed 500 hits/s at worst plus start, settle and shutdown time.
  watchdog('bench:verify', 2 * (o.hits / 500 + 90) * 1000 + 30_000);
  console.log(machineLine());
  const results = await runVerifyBench(o);
  console.log(formatVerifyReport(o, results).join('\n'));
}

main().catch((err: unknown) => {
  console.error('bench:verify failed:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
