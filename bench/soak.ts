/**
 * `npm run soak`: Tagwarden under a steady load for a long time, to find what a short benchmark
 * cannot: memory or file descriptors that grow, an event loop that slows, queues that do not come
 * back to empty, events lost on the way. Not part of `npm test` (it runs for minutes and measures);
 * everything runs on 127.0.0.1.
 *
 * Children (bench/children.ts): the vendor sink (bench/servers/sink.ts) failing `--fail-share` of
 * the vendor requests with 500, or 503 + Retry-After, so retries happen; the fake CookieBoss verify
 * API (bench/servers/verify.ts) limited to `--verify-plan` requests a minute (429 + Retry-After
 * beyond), while Tagwarden is configured with `--verify-budget`, a higher plan, so it is
 * rate-limited (by default derived from the rate: verifyLimits); and Tagwarden itself (bench/servers/tagwarden.ts: journal on, SQLite store in a
 * temp directory, destinations meta, ga4 and webhook at the sink, `upstream.verify` at the fake API).
 *
 *   1. capacity: a fresh Tagwarden under autocannon (`--connections`, as fast as they go) for
 *      `--capacity-s` after `--warmup-s` (bench/ingest.ts's load), then until its delivery queues
 *      are empty, then stopped: the capacity is the acknowledged hits over both (see runSoak);
 *   2. soak: another fresh Tagwarden driven at half that capacity (or `--rate`) by the open-loop
 *      paced generator (bench/paced.ts) for `--minutes`, sampled every `--sample-s`: RSS and open
 *      FDs (/proc), the V8 heap, event-loop lag p99, delivery queues, held events (/metrics), in
 *      flight and retrying (/__bench/delivery), journal rows (/__bench/journal), the generator's
 *      answers and latency, the verify API's answers and 429s, and the CPU of each process;
 *   3. drain: the load stops; it waits (up to `--drain-s`) for the queues, the held events and the
 *      journal to empty, reads /metrics a last time, and stops Tagwarden with SIGTERM.
 *
 * The visitor mix: 90% of the hits carry consent, from `--visitors` returning visitors (7 in 10
 * grant advertising and analytics, 2 analytics only, 1 neither); 10% carry none, from new visitors
 * each sending `--upstream-hits` hits, whose consent Tagwarden asks the verify API for.
 *
 * It prints the samples (condensed; `--json <file>` writes them all) and a verdict per criterion (bench/soak-report.ts), and exits
 * 0 whatever they say (it measures); 1 when it could not run. A watchdog ends it at the planned
 * duration plus a margin; every child is killed on exit.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { positive } from './args.ts';
import { installExitHooks, startChild, type ChildHandle } from './children.ts';
import { eventFactory, type EventFactory } from './event.ts';
import { load, median, percentile } from './ingest.ts';
import { machineBusySeconds, processCpuSeconds } from './proc-cpu.ts';
import { pacedLoad } from './paced.ts';
import { machineLine, watchdog } from './tally.ts';
import type { SinkPathStats } from './servers/sink.ts';
import type { VerifyServerStats } from './servers/verify.ts';
import type { QueueStats, LoopStats } from './keep-up.ts';
import { books, byLabel, parseMetrics, sampleTable, total, verdicts, verdictTable, type Scrape, type SoakSample } from './soak-report.ts';

const DESTINATIONS = ['meta', 'ga4', 'webhook'] as const;
const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));

interface SoakOptions {
  minutes: number;
  rate: number | undefined;
  sampleS: number;
  capacityS: number;
  warmupS: number;
  connections: number;
  visitors: number;
  upstreamHits: number;
  /** The fake verify API's limit a minute, and Tagwarden's requestsPerMinute; undefined: derived from the soak's rate (verifyLimits). */
  verifyPlan: number | undefined;
  verifyBudget: number | undefined;
  failShare: number;
  drainS: number;
  logLevel: string;
  /** Where to write every sample as JSON (for a closer look than the condensed table). */
  jsonFile: string | undefined;
  /** A directory: Tagwarden writes a V8 heap snapshot there at the end of the first quarter and near the end of the load (compare them with bench/heap-diff.ts); they stall it for seconds. */
  heapSnapshots: string | undefined;
  /** Each sample first makes Tagwarden (node --expose-gc) collect fully and records the heap left: a diagnostic, it stalls the loop. */
  gcProbe: boolean;
}

/** The hits: 90% carried consent from returning visitors (by visitor: 7/10 all, 2/10 analytics only, 1/10 none), 10% new visitors asked upstream. */
function visitorMix(runId: string, o: SoakOptions): EventFactory {
  const returning = (seq: number): number => seq % o.visitors;
  const variants = [
    eventFactory(runId, o.visitors, 'purchase', new Date(), { consent: true, visitor: returning }),
    eventFactory(runId, o.visitors, 'purchase', new Date(), { consent: { advertising: false, analytics: true }, visitor: returning }),
    eventFactory(runId, o.visitors, 'purchase', new Date(), { consent: { advertising: false, analytics: false }, visitor: returning }),
  ];
  // Upstream hits are seq % 20 in {0, 1}; k counts them, and every upstreamHits of them are a new visitor past the returning ones.
  const upstream = eventFactory(runId, o.visitors, 'purchase', new Date(), {
    consent: false,
    visitor: (seq) => o.visitors + Math.floor((Math.floor(seq / 20) * 2 + (seq % 20)) / o.upstreamHits),
  });
  return {
    path: upstream.path,
    contentType: upstream.contentType,
    body(seq) {
      if (seq % 20 < 2) return upstream.body(seq);
      const v = returning(seq) % 10;
      return variants[v < 7 ? 0 : v < 9 ? 1 : 2]!.body(seq);
    },
  };
}

async function getText(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return res.text();
}
const getJson = async <T>(port: number, path: string): Promise<T> => JSON.parse(await getText(port, path)) as T;
async function tryJson<T>(port: number, path: string): Promise<T | undefined> {
  try {
    return await getJson<T>(port, path);
  } catch {
    return undefined;
  }
}
async function post(port: number, path: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
}

/** VmRSS (MiB) and the number of open file descriptors of a process, from /proc (Linux). */
function procStatus(pid: number): { rssMiB: number | undefined; fds: number | undefined } {
  let rssMiB: number | undefined;
  let fds: number | undefined;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    rssMiB = kb === undefined ? undefined : Number(kb) / 1024;
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    // not Linux, or the process is gone
  }
  return { rssMiB, fds };
}

/** The generator's answers over the current sampling interval. */
class Window {
  latencies: number[] = [];
  ok = 0;
  non2xx = 0;
  errors = 0;
  totalOk = 0;
  totalNon2xx = 0;
  totalErrors = 0;
  add(status: number, ms: number): void {
    if (status >= 200 && status < 300) {
      this.ok++;
      this.totalOk++;
      this.latencies.push(ms);
    } else {
      this.non2xx++;
      this.totalNon2xx++;
    }
  }
  error(): void {
    this.errors++;
    this.totalErrors++;
  }
  take(): { ok: number; non2xx: number; errors: number; p50Ms: number; p99Ms: number } {
    const sorted = Float64Array.from(this.latencies).sort();
    const out = { ok: this.ok, non2xx: this.non2xx, errors: this.errors, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
    this.latencies = [];
    this.ok = this.non2xx = this.errors = 0;
    return out;
  }
}

interface Procs {
  tagwarden: ChildHandle;
  sink: ChildHandle;
  verify: ChildHandle;
}

/** Takes samples: each one covers the time since the previous one (CPU, the generator's window, the verify API's counts). */
function sampler(p: Procs, win: Window, gcProbe: boolean) {
  const startedAt = performance.now();
  const cpu = (): { tw: number | undefined; bench: number | undefined; machine: number | undefined; at: number } => {
    const own = process.cpuUsage();
    const s = processCpuSeconds(p.sink.pid);
    const v = processCpuSeconds(p.verify.pid);
    return {
      tw: processCpuSeconds(p.tagwarden.pid),
      bench: s === undefined || v === undefined ? undefined : s + v + (own.user + own.system) / 1e6,
      machine: machineBusySeconds(),
      at: performance.now(),
    };
  };
  let lastCpu = cpu();
  let lastVerify: VerifyServerStats | undefined;
  return {
    async take(phase: SoakSample['phase']): Promise<{ sample: SoakSample; scrape: Scrape | undefined }> {
      let heapAfterGc: number | undefined;
      if (gcProbe) {
        const res = await fetch(`http://127.0.0.1:${p.tagwarden.port}/__bench/gc`, { method: 'POST', signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
        heapAfterGc = res === undefined ? undefined : ((await res.json()) as { heapUsed?: number }).heapUsed;
      }
      const [metricsText, delivery, journal, verify] = await Promise.all([
        getText(p.tagwarden.port, '/metrics').catch(() => undefined),
        tryJson<Record<string, QueueStats> & { __loop?: LoopStats }>(p.tagwarden.port, '/__bench/delivery'),
        tryJson<{ pending?: number; dead?: number }>(p.tagwarden.port, '/__bench/journal'),
        tryJson<VerifyServerStats>(p.verify.port, '/__stats'),
      ]);
      const scrape = metricsText === undefined ? undefined : parseMetrics(metricsText);
      const { rssMiB, fds } = procStatus(p.tagwarden.pid);
      const now = cpu();
      const wall = (now.at - lastCpu.at) / 1000;
      const cores = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || wall <= 0 ? undefined : (a - b) / wall);
      const tagwardenCpu = cores(now.tw, lastCpu.tw);
      const benchCpu = cores(now.bench, lastCpu.bench);
      const machineCpu = cores(now.machine, lastCpu.machine);
      lastCpu = now;
      const { __loop: loop, ...queues } = delivery ?? {};
      const qs = Object.values(queues);
      const lag = scrape?.get('tagwarden_nodejs_eventloop_lag_p99_seconds')?.[0]?.value;
      const heap = scrape?.get('tagwarden_nodejs_heap_size_used_bytes')?.[0]?.value;
      const external = scrape?.get('tagwarden_nodejs_external_memory_bytes')?.[0]?.value;
      const heapTotal = scrape?.get('tagwarden_nodejs_heap_size_total_bytes')?.[0]?.value;
      const sample: SoakSample = {
        t: (performance.now() - startedAt) / 1000,
        phase,
        rssMiB,
        fds,
        heapMiB: heap === undefined ? undefined : heap / 2 ** 20,
        heapTotalMiB: heapTotal === undefined ? undefined : heapTotal / 2 ** 20,
        externalMiB: external === undefined ? undefined : external / 2 ** 20,
        heapAfterGcMiB: heapAfterGc === undefined ? undefined : heapAfterGc / 2 ** 20,
        lagP99Ms: lag === undefined ? undefined : lag * 1000,
        lagMaxMs: loop?.maxMs,
        gcMaxMs: loop?.gcMaxMs,
        queued: scrape === undefined ? 0 : total(scrape, 'tagwarden_delivery_queued_events'),
        inFlight: qs.reduce((a, q) => a + q.inFlight, 0),
        awaitingRetry: qs.reduce((a, q) => a + q.awaitingRetry, 0),
        held: scrape === undefined ? 0 : total(scrape, 'tagwarden_held_events'),
        journalPending: journal?.pending,
        journalDead: journal?.dead,
        ...win.take(),
        verifyAnswered: verify === undefined ? 0 : verify.requests - (lastVerify?.requests ?? 0),
        verify429: verify === undefined ? 0 : verify.rateLimited - (lastVerify?.rateLimited ?? 0),
        tagwardenCpu,
        benchCpu,
        otherCpu: machineCpu === undefined || tagwardenCpu === undefined || benchCpu === undefined ? undefined : Math.max(0, machineCpu - tagwardenCpu - benchCpu),
      };
      if (verify !== undefined) lastVerify = verify;
      return { sample, scrape };
    },
  };
}

/**
 * The verify API's plan and Tagwarden's budget at `rate` hits/s. Each new upstream visitor is
 * looked up once (its later hits find the cache), so the lookups a minute are 60 x rate x 10% /
 * upstreamHits. By default the plan is two thirds of that, so about a third of the lookups are
 * beyond it and refused with 429, and Tagwarden is configured with twice the plan (a wrong plan,
 * as an operator may set it), so it does not hold itself back and meets the 429s and Retry-After.
 */
function verifyLimits(o: SoakOptions, rate: number): { plan: number; budget: number; lookupsPerMinute: number } {
  const lookupsPerMinute = (60 * rate * 0.1) / o.upstreamHits;
  const plan = o.verifyPlan ?? Math.max(1, Math.round((lookupsPerMinute * 2) / 3));
  return { plan, budget: o.verifyBudget ?? 2 * plan, lookupsPerMinute };
}

function tagwardenArgs(o: SoakOptions, sink: ChildHandle, verify: ChildHandle, budget: number, lifetimeS: number): string[] {
  return [
    '--sink', `http://127.0.0.1:${sink.port}`,
    '--verify', `http://127.0.0.1:${verify.port}`,
    '--verify-per-minute', String(budget),
    '--destinations', DESTINATIONS.join(','),
    '--journal', 'on',
    '--log', o.logLevel,
    '--lifetime-s', String(lifetimeS),
  ];
}

async function runSoak(o: SoakOptions, lifetimeS: number, log: (l: string) => void): Promise<string[]> {
  const out: string[] = [];
  const runId = Math.random().toString(36).slice(2, 8);
  const factory = visitorMix(runId, o);
  const before = machineBusySeconds();
  await sleep(1_000);
  const after = machineBusySeconds();
  const busyBefore = before === undefined || after === undefined ? undefined : after - before;

  const life = ['--lifetime-s', String(lifetimeS)];
  const sink = await startChild('sink', here('./servers/sink.ts'), ['--fail-share', String(o.failShare), ...life]);
  let verify: ChildHandle | undefined;
  let tagwarden: ChildHandle | undefined;
  try {
    const next = { seq: 0 };
    let rate = o.rate;
    let capacityLine = `capacity: not measured (--rate ${o.rate})`;
    if (rate === undefined) {
      // The capacity run's own verify API, with the limits of a guessed 500 hits/s (they matter little at saturation).
      const guess = verifyLimits(o, 500);
      verify = await startChild('verify', here('./servers/verify.ts'), ['--per-minute', String(guess.plan), ...life]);
      tagwarden = await startChild('tagwarden', here('./servers/tagwarden.ts'), tagwardenArgs(o, sink, verify, guess.budget, lifetimeS));
      log(`capacity: tagwarden pid ${tagwarden.pid}; ${o.warmupS} s warm-up, then ${o.capacityS} s with ${o.connections} connections as fast as they go`);
      await load({ factory, next, port: tagwarden.port, seconds: o.warmupS, connections: o.connections, watch: {} });
      const m = await load({ factory, next, port: tagwarden.port, seconds: o.capacityS, connections: o.connections, watch: { target: tagwarden.pid, sink: sink.pid } });
      // Acknowledging is not the whole work: deliveries (GA4's a request per event in this mix) run
      // behind the answers, and a 10 s burst leaves a backlog (984 acknowledged hits/s once gave a
      // soak at 492 whose queues filled up and refused a quarter of its hits). The capacity is the
      // acknowledged hits over the burst and the time until their deliveries were done, and never
      // more than one core over the CPU per hit of both. Time, not CPU alone: delivery here is bound
      // by something else too (the soak at 492 had its queues at their bound with Tagwarden at 60% of
      // a core); the drain's last retries' backoff makes the figure a little low.
      const loadEnded = performance.now();
      const cpuAtLoadEnd = processCpuSeconds(tagwarden.pid);
      const drainS = await drain(tagwarden.port, loadEnded, o.drainS, 'delivery');
      const cpuAfterDrain = processCpuSeconds(tagwarden.pid);
      await tagwarden.stop();
      tagwarden = undefined;
      const allInS = drainS === undefined || m.targetCpu === undefined || cpuAtLoadEnd === undefined || cpuAfterDrain === undefined || m.ok === 0 ? undefined : (m.targetCpu * m.durationSec + cpuAfterDrain - cpuAtLoadEnd) / m.ok;
      const sustained = allInS === undefined || drainS === undefined ? undefined : Math.min(m.hitsPerSec, 1 / allInS, (m.hitsPerSec * m.durationSec) / (m.durationSec + drainS));
      rate = Math.max(1, Math.floor((sustained ?? m.hitsPerSec) / 2));
      const other = m.machineCpu === undefined || m.targetCpu === undefined ? undefined : Math.max(0, m.machineCpu - m.targetCpu - (m.sinkCpu ?? 0) - m.generatorCpu);
      capacityLine =
        `capacity: ${m.hitsPerSec.toFixed(0)} hits/s (2xx) over ${o.capacityS} s with ${o.connections} connections (autocannon), p99 ${m.p99Ms.toFixed(1)} ms, ` +
        `${m.non2xx} non-2xx, ${m.errors + m.timeouts} errors; Tagwarden CPU ${((m.targetCpu ?? NaN) * 100).toFixed(0)}% (${(m.targetCpuUsPerHit ?? NaN).toFixed(0)} us per hit: ` +
        `${m.targetCpuUsPerHit === undefined ? 'n/a' : (1e6 / m.targetCpuUsPerHit).toFixed(0)} hits/s on a free core), other CPU ${other === undefined ? 'n/a' : `${(other * 100).toFixed(0)}%`}; ` +
        (sustained === undefined || allInS === undefined || drainS === undefined
          ? `deliveries not drained within ${o.drainS} s (or CPU unreadable) -> soak rate ${rate} hits/s (half of the acknowledged hits/s)`
          : `deliveries drained ${drainS.toFixed(1)} s after the load, ${(allInS * 1e6).toFixed(0)} us of CPU per hit with them (${(1 / allInS).toFixed(0)} hits/s on a core): ${sustained.toFixed(0)} hits/s sustained -> soak rate ${rate} hits/s (half of that)`);
      log(capacityLine);
      // The held events of the capacity run have been decided by its shutdown; start the soak's counts from zero.
      await post(sink.port, '/__reset');
      await verify.stop();
      verify = undefined;
    }

    const limits = verifyLimits(o, rate);
    verify = await startChild('verify', here('./servers/verify.ts'), ['--per-minute', String(limits.plan), ...life]);
    const nodeArgs = [...(o.gcProbe ? ['--expose-gc'] : []), ...(o.heapSnapshots === undefined ? [] : ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${o.heapSnapshots}`])];
    tagwarden = await startChild('tagwarden', here('./servers/tagwarden.ts'), tagwardenArgs(o, sink, verify, limits.budget, lifetimeS), { nodeArgs });
    log(`soak: tagwarden pid ${tagwarden.pid}, ${rate} hits/s for ${o.minutes} min, a sample every ${o.sampleS} s`);
    const win = new Window();
    const s = sampler({ tagwarden, sink, verify }, win, o.gcProbe);
    await s.take('load'); // starts the intervals (CPU, lag, verify counts) at the load's start
    const samples: SoakSample[] = [];
    const snapshotsAt = [o.minutes * 15, o.minutes * 60 - 2 * o.sampleS];
    let sampling = true;
    const loop = (async () => {
      let due = performance.now();
      for (;;) {
        due += o.sampleS * 1000;
        await sleep(Math.max(0, due - performance.now()));
        if (!sampling) return;
        const { sample } = await s.take('load');
        samples.push(sample);
        // Heap snapshots where the RSS criterion compares (the ends of the first and the last quarter).
        if (o.heapSnapshots !== undefined && snapshotsAt.length > 0 && sample.t >= snapshotsAt[0]!) {
          snapshotsAt.shift();
          heapSnapshot(tagwarden, o.heapSnapshots, sample.t);
        }
        const minute = Math.round(sample.t);
        if (minute % 60 < o.sampleS) {
          log(
            `  t=${minute}s rss ${sample.rssMiB?.toFixed(1)} MiB, fds ${sample.fds}, lag p99 ${sample.lagP99Ms?.toFixed(1)} ms, queued ${sample.queued}, held ${sample.held}, ` +
              `journal ${sample.journalPending}, p99 ${sample.p99Ms.toFixed(1)} ms, refused ${sample.non2xx + sample.errors}, other CPU ${sample.otherCpu === undefined ? 'n/a' : `${(sample.otherCpu * 100).toFixed(0)}%`}`,
          );
        }
      }
    })();
    const seconds = o.minutes * 60;
    const started = performance.now();
    const result = await pacedLoad({
      url: `http://127.0.0.1:${tagwarden.port}`,
      path: factory.path,
      rate,
      seconds,
      connections: o.connections,
      headers: { 'content-type': factory.contentType, 'user-agent': 'tagwarden-bench' },
      body: (seq) => factory.body(next.seq + seq),
      onResponse: (status, ms) => win.add(status, ms),
      onError: () => win.error(),
    });
    const loadEndedAt = performance.now();
    sampling = false;
    await loop;
    const { sample: atLoadEnd } = await s.take('load');
    samples.push(atLoadEnd);
    log(`soak: load done (${result.duration.toFixed(0)} s, ${win.totalOk} 2xx, ${win.totalNon2xx} non-2xx, ${win.totalErrors} errors); draining`);

    // Drain: until nothing is queued, held or left in the journal, or --drain-s.
    const drainedAfterS = await drain(tagwarden.port, loadEndedAt, o.drainS);
    const { sample: afterDrain, scrape: finalScrape } = await s.take('drain');
    samples.push(afterDrain);
    const sinkStats = await getJson<Record<string, SinkPathStats>>(sink.port, '/__stats');
    const verifyStats = await getJson<VerifyServerStats>(verify.port, '/__stats');
    const exit = await tagwarden.stop();
    const stderr = tagwarden.stderr;
    tagwarden = undefined;

    // What the load samples say (the interval that ends at the load's end included, the drain not).
    const loadSamples = samples.filter((x) => x.phase === 'load');
    const span = atLoadEnd.t;
    const okBetween = loadSamples.filter((x) => x.t > (span * 3) / 8 && x.t <= (span * 7) / 8).reduce((a, x) => a + x.ok, 0);
    const sinkTook = Object.fromEntries(DESTINATIONS.map((d) => [d, (sinkStats[`/${d}`]?.events ?? 0) - (sinkStats[`/${d}`]?.failedEvents ?? 0)]));
    const b = finalScrape === undefined ? [] : books({ destinations: DESTINATIONS, acknowledged: win.totalOk, scrape: finalScrape, sinkTook });
    const criteria = verdicts({
      load: loadSamples,
      afterDrain,
      drainedAfterS,
      books: b,
      refused: win.totalNon2xx,
      errors: win.totalErrors,
      hitsBetweenQuarters: okBetween,
    });

    if (o.jsonFile !== undefined) writeFileSync(o.jsonFile, JSON.stringify({ options: o, rate, samples, criteria }, null, 1));
    const others = loadSamples.map((x) => x.otherCpu).filter((x): x is number => x !== undefined);
    const twCpu = loadSamples.map((x) => x.tagwardenCpu).filter((x): x is number => x !== undefined);
    out.push(
      `soak: ${o.minutes} min at ${rate} hits/s (open loop, ${o.connections} connections), POST /v1/track; ${o.visitors} returning visitors carrying consent (90% of hits), ` +
        `new visitors without consent asked upstream (10%, ${o.upstreamHits} hits each)`,
    );
    out.push(
      `Tagwarden: journal on, SQLite store (temp file), destinations ${DESTINATIONS.join(', ')} at the sink; upstream.verify requestsPerMinute ${limits.budget} ` +
        `against a fake verify API allowing ${limits.plan}/min (429 + Retry-After beyond; about ${limits.lookupsPerMinute.toFixed(0)} lookups/min expected); sink fails ${(o.failShare * 100).toFixed(1)}% of vendor requests (500, or 503 + Retry-After: 1)`,
    );
    if (busyBefore !== undefined) out.push(`machine busy in the second before the soak: ${(busyBefore * 100).toFixed(0)}% of a core${busyBefore > 0.2 ? ' -- something else is running' : ''}`);
    out.push(capacityLine);
    out.push(
      `load: ${win.totalOk} hits answered 2xx, ${win.totalNon2xx} non-2xx, ${win.totalErrors} without an answer, over ${((loadEndedAt - started) / 1000).toFixed(0)} s; ` +
        `Tagwarden CPU median ${(median(twCpu) * 100).toFixed(0)}% of a core; other load on the machine (not the bench's processes): median ${(median(others) * 100).toFixed(0)}%, max ${(Math.max(...others) * 100).toFixed(0)}% of a core`,
    );
    out.push('');
    out.push(`samples (every ${o.sampleS} s, condensed: gauges as at the row's end, counts summed, lag and latency the worst of the row; the last row is after the drain):`);
    out.push(...sampleTable(samples));
    out.push('');
    out.push(...verdictTable(criteria));
    out.push('');
    out.push(`verify API: ${verifyStats.requests} answered, ${verifyStats.rateLimited} refused 429, ${verifyStats.distinctVisitors} distinct visitors, at most ${verifyStats.maxInFlight} in flight`);
    if (finalScrape !== undefined) {
      const join = (r: Record<string, number>): string => Object.entries(r).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)';
      const by = (name: string, label: string): Record<string, number> => byLabel(finalScrape, name, label);
      out.push(`tagwarden upstream verify calls: ${join(by('tagwarden_upstream_verify_calls_total', 'outcome'))}`);
      out.push(`tagwarden consent lookups: ${join(by('tagwarden_consent_lookups_total', 'result'))}`);
      out.push(`tagwarden decisions by reason: ${join(by('tagwarden_decisions_total', 'reason'))}`);
      out.push(`tagwarden deliveries by outcome: ${join(by('tagwarden_deliveries_total', 'outcome'))}`);
      out.push(`tagwarden holds started: ${join(by('tagwarden_holds_started_total', 'reason'))}`);
    }
    out.push(`sink: ${DESTINATIONS.map((d) => `/${d} ${sinkStats[`/${d}`]?.requests ?? 0} requests (${sinkStats[`/${d}`]?.failed ?? 0} failed on purpose)`).join(', ')}`);
    out.push(`tagwarden stopped: ${exit}; ${stderr.lines} log lines on stderr${stderr.lines > 0 ? ', the first:' : ''}`);
    for (const l of stderr.head.slice(0, 5)) out.push(`  ${l.length > 300 ? `${l.slice(0, 300)}...` : l}`);
    return out;
  } finally {
    await tagwarden?.stop();
    await verify?.stop();
    await sink.stop();
  }
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: here('.') }).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Waits until Tagwarden has nothing queued for delivery and (`all`) nothing held or left in its
 * journal, or `drainS` after `since` (performance.now()); the seconds from `since` until then,
 * undefined if it never came. Held events wait for their hold to end, not for work: `delivery`
 * leaves them out.
 */
async function drain(port: number, since: number, drainS: number, what: 'all' | 'delivery' = 'all'): Promise<number | undefined> {
  while (performance.now() - since < drainS * 1000) {
    const [text, journal] = await Promise.all([getText(port, '/metrics').catch(() => ''), tryJson<{ pending?: number }>(port, '/__bench/journal')]);
    const m = parseMetrics(text);
    const rest = what === 'delivery' || (total(m, 'tagwarden_held_events') === 0 && journal?.pending === 0);
    if (text !== '' && total(m, 'tagwarden_delivery_queued_events') === 0 && rest) {
      return (performance.now() - since) / 1000;
    }
    await sleep(1_000);
  }
  return undefined;
}

/** Asks Tagwarden (run with --heapsnapshot-signal=SIGUSR2) for a heap snapshot in `dir`; node names the file itself. */
function heapSnapshot(child: ChildHandle, dir: string, t: number): void {
  process.kill(child.pid, 'SIGUSR2');
  console.error(`  t=${Math.round(t)}s heap snapshot asked of pid ${child.pid} (into ${dir})`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '20' },
      rate: { type: 'string' },
      'sample-s': { type: 'string', default: '10' },
      'capacity-s': { type: 'string', default: '10' },
      'warmup-s': { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      visitors: { type: 'string', default: '50000' },
      'upstream-hits': { type: 'string', default: '4' },
      'verify-plan': { type: 'string' },
      'verify-budget': { type: 'string' },
      'fail-share': { type: 'string', default: '0.01' },
      'drain-s': { type: 'string', default: '120' },
      json: { type: 'string' },
      'gc-probe': { type: 'boolean', default: false },
      'heap-snapshots': { type: 'string' },
      log: { type: 'string', default: 'warn' },
    },
    strict: true,
  });
  const o: SoakOptions = {
    minutes: positive('minutes', values.minutes, false),
    rate: values.rate === undefined ? undefined : positive('rate', values.rate, false),
    sampleS: positive('sample-s', values['sample-s'], false),
    capacityS: positive('capacity-s', values['capacity-s'], false),
    warmupS: positive('warmup-s', values['warmup-s'], false),
    connections: positive('connections', values.connections, true),
    visitors: positive('visitors', values.visitors, true),
    upstreamHits: positive('upstream-hits', values['upstream-hits'], true),
    verifyPlan: values['verify-plan'] === undefined ? undefined : positive('verify-plan', values['verify-plan'], true),
    verifyBudget: values['verify-budget'] === undefined ? undefined : positive('verify-budget', values['verify-budget'], true),
    failShare: positive('fail-share', values['fail-share'], false, true),
    drainS: positive('drain-s', values['drain-s'], false),
    logLevel: values.log,
    jsonFile: values.json,
    gcProbe: values['gc-probe'],
    heapSnapshots: values['heap-snapshots'],
  };
  if (o.failShare > 1) throw new Error('--fail-share must be at most 1');
  installExitHooks();
  const budgetS = (o.rate === undefined ? o.warmupS + o.capacityS + 60 : 0) + o.minutes * 60 + o.drainS + 120;
  watchdog('soak', budgetS * 1000);
  console.log(`npm run soak -- --minutes ${o.minutes}; ${new Date().toISOString()}; commit ${commit()}`);
  console.log(machineLine());
  const lines = await runSoak(o, budgetS + 60, (l) => console.error(l));
  console.log(lines.join('\n'));
}

main().catch((err: unknown) => {
  console.error('soak failed:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
