/**
 * `npm run bench:verify`: consent the hits do not carry, looked up on a CookieBoss-compatible
 * verify API (docs/consent.md, "Consent the hit does not carry: the upstream verify API"), and
 * whether each destination's delivery keeps up with 10,000 visitors (docs/performance.md).
 *
 * Each run gets a fresh Tagwarden child, vendor sink (bench/servers/sink.ts) and fake verify server
 * (bench/servers/verify.ts, answering every visitor "consent to everything" after `--delay-ms`),
 * with the same config (`upstream.verify` pointing at the fake server):
 *
 *   (a) upstream: the hits carry no consent object, so every visitor's consent comes from the
 *       verify API (through Tagwarden's cache and single flight);
 *   (b) carried:  the same hits with `context.consent.categoryPreferences` granting advertising and
 *       analytics, so nothing is asked.
 *
 * Each run sends exactly `--hits` hits cycling over `--visitors` visitors: with autocannon as fast
 * as `--connections` keep-alive connections allow, or with `--rate <n>` at n hits/s at evenly
 * spaced times (bench/paced.ts, open loop). While the load runs and until the queues are empty, it
 * samples every `--sample-ms` the answers, what the sink received and each destination's queue
 * (bench/keep-up.ts), then stops Tagwarden with SIGTERM and reads its counters. It prints the
 * hits/s, the upstream calls per hit (target <= 0.1; the naive client of the CookieBoss example
 * makes 1 per hit), per destination whether acknowledged = delivered + decided and whether it kept
 * up (no 503, queue empty within 2 s of the last hit), the vendor requests/s, Tagwarden's CPU per
 * hit, and a timeline of the queues.
 *
 * Options:
 *   --hits <n>                  hits per run (default 100000)
 *   --visitors <n>              distinct visitors the hits cycle over (default 10000)
 *   --rate <n>                  paced load at n hits/s (default: as fast as the connections go)
 *   --runs <list>               upstream,carried (default both, in that order)
 *   --delay-ms <n>              the verify server's answer time (default 20)
 *   --vendor-delay-ms <n>       the sink's answer time, a vendor's latency over the internet (default 0)
 *   --connections <n>           concurrent keep-alive connections of the load (default 50)
 *   --destinations <list>       Tagwarden's destinations among meta,ga4,webhook, or none (default all three)
 *   --max-in-flight <id=n,...>  destinations[].maxInFlight overrides (default: the config defaults)
 *   --connections-per-origin <n> delivery.connectionsPerOrigin (default: the config default)
 *   --sample-ms <n>             timeline sampling interval (default 1000)
 *   --profile <dir>             run Tagwarden with --cpu-prof writing into <dir>, and print the hot spots of the last run
 *   --log <level>               Tagwarden's log level (default warn)
 *
 * Exits 0 whether or not the targets hold (a benchmark measures, it does not gate); exits 1 when
 * the bench itself could not run. Every child process is stopped on exit, and a watchdog ends a
 * run that takes far longer than planned.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { positive } from './args.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon, { type Options } from 'autocannon';
import { machineLine, responseTally, watchdog, type ResponseTally } from './tally.ts';
import { installExitHooks, startChild, type ChildHandle } from './children.ts';
import { eventFactory, type EventFactory } from './event.ts';
import { keepUp, startSampler } from './keep-up.ts';
import { pacedLoad } from './paced.ts';
import { summarizeProfile } from './profile-summary.ts';
import type { SinkPathStats } from './servers/sink.ts';
import type { VerifyServerStats } from './servers/verify.ts';
import { formatVerifyReport, type Mode, type RunResult, type VerifyBenchOptions } from './verify-report.ts';

/** How long the queues may take to empty after the last hit before the run gives up waiting. */
const MAX_DRAIN_MS = 60_000;

type Counters = Record<string, Record<string, number>>;

const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));

async function getJson<T>(child: ChildHandle, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${child.port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as T;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Exactly `hits` POSTs of /v1/track: as fast as the connections allow, or paced at `rate`. */
async function send(port: number, o: VerifyBenchOptions, factory: EventFactory, tally: ResponseTally, sent: { n: number }) {
  const headers = { 'content-type': 'application/json', 'user-agent': 'tagwarden-bench' };
  const body = (seq: number): string => {
    sent.n = Math.max(sent.n, seq + 1);
    return factory.body(seq);
  };
  let seconds: number;
  let errors: number;
  if (o.rate !== undefined) {
    const r = await pacedLoad({
      url: `http://127.0.0.1:${port}`,
      path: '/v1/track',
      rate: o.rate,
      seconds: o.hits / o.rate,
      connections: o.connections,
      headers,
      body,
      onResponse: (status, ms) => tally.add(status, ms),
    });
    seconds = r.duration;
    errors = r.errors + r.timeouts;
  } else {
    let seq = 0;
    // `amount` (autocannon 9: send this many requests, then stop) is not in bench/autocannon.d.ts.
    const options: Options & { amount: number } = {
      url: `http://127.0.0.1:${port}/v1/track`,
      method: 'POST',
      connections: o.connections,
      amount: o.hits,
      timeout: 10,
      headers,
      requests: [{ setupRequest: (req) => ({ ...req, body: body(seq++) }) }],
    };
    const instance = autocannon(options);
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => tally.add(status, ms));
    const result = await instance;
    seconds = result.duration;
    errors = result.errors + result.timeouts;
  }
  const sorted = Float64Array.from(tally.latencies).sort();
  return { seconds, hitsPerSec: tally.ok / seconds, errors, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), endedAt: Date.now() };
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

function tagwardenArgs(o: VerifyBenchOptions, sink: ChildHandle, verify: ChildHandle): string[] {
  const args = ['--sink', `http://127.0.0.1:${sink.port}`, '--verify', `http://127.0.0.1:${verify.port}`, '--log', o.logLevel];
  args.push('--destinations', o.destinations.length === 0 ? 'none' : o.destinations.join(','));
  if (o.maxInFlight !== undefined) args.push('--max-in-flight', o.maxInFlight);
  if (o.connectionsPerOrigin !== undefined) args.push('--connections-per-origin', String(o.connectionsPerOrigin));
  return args;
}

const profileName = (mode: Mode): string => `tagwarden-verify-${mode}-${process.pid}.cpuprofile`;

/** One run: fresh sink, verify server and Tagwarden; send the hits while sampling; let the queues empty; stop Tagwarden; collect. */
async function runOnce(mode: Mode, o: VerifyBenchOptions, runId: string, log: (line: string) => void): Promise<RunResult> {
  let sink: ChildHandle | undefined;
  let verify: ChildHandle | undefined;
  let tagwarden: ChildHandle | undefined;
  try {
    sink = await startChild('sink', here('./servers/sink.ts'), ['--delay-ms', String(o.vendorDelayMs)]);
    verify = await startChild('verify', here('./servers/verify.ts'), ['--delay-ms', String(o.delayMs)]);
    const nodeArgs = o.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${profileName(mode)}`];
    tagwarden = await startChild('tagwarden', here('./servers/tagwarden.ts'), tagwardenArgs(o, sink, verify), { nodeArgs });
    const pace = o.rate === undefined ? `over ${o.connections} connections, as fast as they go` : `at ${o.rate} hits/s`;
    log(`(${mode === 'upstream' ? 'a' : 'b'}) ${mode}: tagwarden pid ${tagwarden.pid}, sending ${o.hits} hits ${pace}`);
    const factory = eventFactory(runId, o.visitors, 'purchase', new Date(), { consent: mode === 'carried' });
    const tally = responseTally();
    const sent = { n: 0 };
    const sampler = startSampler({
      sinkPort: sink.port,
      tagwardenPort: tagwarden.port,
      tagwardenPid: tagwarden.pid,
      intervalMs: o.sampleMs,
      counts: () => ({ sent: sent.n, ok: tally.ok, refused: tally.non2xx }),
    });
    const load = await send(tagwarden.port, o, factory, tally, sent);
    const loadEnd = performance.now();
    const atLoadEnd = await sampler.sampleNow();
    const loadSamples = sampler.samples.filter((s) => s.t <= atLoadEnd.t);
    // Events still waiting for an answer would be dropped at shutdown: let the lookups finish
    // (bounded by the pending queue's 30 s age limit and the client's 2 s timeout).
    if (mode === 'upstream') await lookupsSettled(verify, 40_000);
    const drainedAfterMs = await sampler.drained(loadEnd, MAX_DRAIN_MS);
    await sampler.stop();
    const cpuEnd = sampler.samples.at(-1)?.cpuS;
    // SIGTERM makes Tagwarden settle its lookups and flush its batches, then print its counters.
    const exit = await tagwarden.stop();
    const summary = tagwarden.messages.find((x): x is { summary: Counters } => typeof x === 'object' && x !== null && 'summary' in x);
    const verifyStats = await getJson<VerifyServerStats>(verify, '/__stats');
    const cpuStart = sampler.samples[0]?.cpuS;
    return {
      mode,
      seconds: load.seconds,
      hitsPerSec: load.hitsPerSec,
      ok: tally.ok,
      non2xx: tally.non2xx,
      statusCodes: tally.statusCodes,
      errors: load.errors,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      verify: verifyStats,
      lastCallAfterLoadMs: verifyStats.lastAt === undefined ? undefined : verifyStats.lastAt - load.endedAt,
      sink: await getJson<Record<string, SinkPathStats>>(sink, '/__stats'),
      counters: summary?.summary,
      exit,
      stderr: tagwarden.stderr,
      samples: sampler.samples,
      loadEndT: atLoadEnd.t,
      drainedAfterMs,
      cpuPerHitUs: cpuStart !== undefined && cpuEnd !== undefined && tally.ok > 0 ? ((cpuEnd - cpuStart) * 1e6) / tally.ok : undefined,
      keepUp: keepUp({
        load: loadSamples,
        refused: tally.non2xx,
        okHits: tally.ok,
        drainedAfterMs,
        sinkPath: (id) => `/${id}`,
        counters: summary?.summary,
      }),
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
  for (const mode of o.runs) results.push(await runOnce(mode, o, runId, log));
  return results;
}

// ---------------------------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hits: { type: 'string', default: '100000' },
      visitors: { type: 'string', default: '10000' },
      rate: { type: 'string' },
      runs: { type: 'string', default: 'upstream,carried' },
      'delay-ms': { type: 'string', default: '20' },
      'vendor-delay-ms': { type: 'string', default: '0' },
      connections: { type: 'string', default: '50' },
      destinations: { type: 'string', default: 'meta,ga4,webhook' },
      'max-in-flight': { type: 'string' },
      'connections-per-origin': { type: 'string' },
      'sample-ms': { type: 'string', default: '1000' },
      profile: { type: 'string' },
      log: { type: 'string', default: 'warn' },
    },
    strict: true,
  });
  const runs = values.runs.split(',').map((r) => r.trim());
  for (const r of runs) if (r !== 'upstream' && r !== 'carried') throw new Error(`--runs: unknown run ${r} (known: upstream, carried)`);
  const destinations = values.destinations === 'none' ? [] : values.destinations.split(',').map((d) => d.trim());
  for (const d of destinations) if (!['meta', 'ga4', 'webhook'].includes(d)) throw new Error(`unknown destination ${d} (known: meta, ga4, webhook, or none)`);
  const o: VerifyBenchOptions = {
    hits: positive('hits', values.hits, true),
    visitors: positive('visitors', values.visitors, true),
    ...(values.rate === undefined ? {} : { rate: positive('rate', values.rate, false) }),
    runs: runs as Mode[],
    delayMs: positive('delay-ms', values['delay-ms'], false, true),
    vendorDelayMs: positive('vendor-delay-ms', values['vendor-delay-ms'], false, true),
    connections: positive('connections', values.connections, true),
    destinations,
    ...(values['max-in-flight'] === undefined ? {} : { maxInFlight: values['max-in-flight'] }),
    ...(values['connections-per-origin'] === undefined ? {} : { connectionsPerOrigin: positive('connections-per-origin', values['connections-per-origin'], true) }),
    sampleMs: positive('sample-ms', values['sample-ms'], true),
    logLevel: values.log,
    ...(values.profile === undefined ? {} : { profileDir: resolve(values.profile) }),
  };
  if (o.profileDir !== undefined) mkdirSync(o.profileDir, { recursive: true });

  installExitHooks();
  // Each run allowed 500 hits/s at worst (or its paced duration) plus start, settle, drain and shutdown time.
  const perRunS = Math.max(o.hits / 500, o.rate === undefined ? 0 : o.hits / o.rate) + 90 + MAX_DRAIN_MS / 1000;
  watchdog('bench:verify', o.runs.length * perRunS * 1000 + 30_000);
  console.log(machineLine());
  const results = await runVerifyBench(o);
  console.log(formatVerifyReport(o, results).join('\n'));
  const last = results.at(-1);
  if (o.profileDir !== undefined && last !== undefined) {
    console.log(`\nCPU profile of Tagwarden in the last run (figures above were measured WITH the profiler on): ${join(o.profileDir, profileName(last.mode))}`);
    console.log(summarizeProfile(join(o.profileDir, profileName(last.mode)), 25).join('\n'));
  }
}

main().catch((err: unknown) => {
  console.error('bench:verify failed:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
