/**
 * The soak run's judgement (bench/soak.ts): what a sample holds, the criteria and how each is
 * decided from the samples and the final counters, and the tables it prints. Pure, so
 * test/bench-soak-criteria.test.ts checks the rules without running anything.
 */
import { median } from './ingest.ts';
import { markdownTable as table } from './tally.ts';

/** Prometheus text format, as `GET /metrics` serves it: metric name → its series (labels, value). */
export type Scrape = Map<string, { labels: Record<string, string>; value: number }[]>;

export function parseMetrics(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    let series = out.get(m[1]!);
    if (series === undefined) out.set(m[1]!, (series = []));
    series.push({ labels, value: Number(m[4]) });
  }
  return out;
}

/** The sum of a metric's series whose labels match `where` (every given label equal). */
export function total(s: Scrape, name: string, where: Record<string, string> = {}): number {
  let n = 0;
  for (const x of s.get(name) ?? []) if (Object.entries(where).every(([k, v]) => x.labels[k] === v)) n += x.value;
  return n;
}

/** Per value of `label`: the sum of the series matching `where`. */
export function byLabel(s: Scrape, name: string, label: string, where: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of s.get(name) ?? []) {
    if (!Object.entries(where).every(([k, v]) => x.labels[k] === v)) continue;
    const key = x.labels[label] ?? '';
    out[key] = (out[key] ?? 0) + x.value;
  }
  return out;
}

export interface SoakSample {
  /** Seconds since the soak load started. */
  t: number;
  phase: 'load' | 'drain';
  /** Tagwarden's resident set (MiB), open file descriptors, V8 heap in use and memory outside it held by JS objects (Buffers; MiB). */
  rssMiB: number | undefined;
  fds: number | undefined;
  heapMiB: number | undefined;
  /** The V8 heap's committed size (MiB): what V8 keeps from the system, used or not; RSS follows it rather than the heap in use. */
  heapTotalMiB: number | undefined;
  externalMiB: number | undefined;
  /** With --gc-probe: the V8 heap in use right after a full collection (MiB): what stays reachable. */
  heapAfterGcMiB?: number | undefined;
  /** Event-loop delay p99 over the interval (ms; prom-client's nodejs_eventloop_lag_p99_seconds, reset at each scrape), and the max seen by the bench server's own monitor. */
  lagP99Ms: number | undefined;
  lagMaxMs: number | undefined;
  /** The longest garbage-collection pause in the interval (ms), from the bench server's observer. */
  gcMaxMs: number | undefined;
  /** Summed over destinations: queued (tagwarden_delivery_queued_events), in flight, awaiting a retry, held (tagwarden_held_events). */
  queued: number;
  inFlight: number;
  awaitingRetry: number;
  held: number;
  /** Journal rows: hits still to be finished (without a dead letter), dead letters (undefined when they could not be read). */
  journalPending: number | undefined;
  journalDead: number | undefined;
  /** The generator over the interval: answers 2xx, other answers, no answer; latency of the 2xx (ms, from when each was due). */
  ok: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests the fake verify API answered and refused (429) over the interval. */
  verifyAnswered: number;
  verify429: number;
  /** CPU over the interval, in cores: Tagwarden, the bench's other processes (generator, sink, verify), and the rest of the machine. */
  tagwardenCpu: number | undefined;
  benchCpu: number | undefined;
  otherCpu: number | undefined;
}

/** Least-squares slope of y over x (units of y per unit of x); NaN with fewer than two points. */
export function slope(points: readonly { x: number; y: number }[]): number {
  if (points.length < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / points.length;
  const my = points.reduce((a, p) => a + p.y, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/**
 * Whether a resource stayed flat after the warm-up. The load samples are cut in quarters by time;
 * the first quarter is the warm-up (caches filling, V8 growing its heap, the connection pools
 * opening). Flat: the median of the last quarter is at most the second quarter's median times
 * (1 + relTol), plus absTol. Medians, not a fit, decide: RSS moves in steps of several MiB as V8
 * grows and shrinks its heap and a 10-minute fit of that sawtooth is mostly noise; a median of
 * 30 samples is not moved by a few GC peaks, and a leak that keeps growing moves it. The slope of a
 * fit over the second half is reported beside it (per hour), to tell a drift from a step.
 */
export interface Flatness {
  secondQuarter: number;
  lastQuarter: number;
  /** Growth of the last quarter's median over the second's, as a share of the second. */
  growth: number;
  /** Least-squares slope over the second half, per hour. */
  slopePerHour: number;
  bound: number;
  flat: boolean;
}

export function flatness(samples: readonly { t: number; v: number | undefined }[], relTol: number, absTol: number): Flatness | undefined {
  const pts = samples.filter((s): s is { t: number; v: number } => s.v !== undefined && Number.isFinite(s.v));
  if (pts.length < 8) return undefined;
  const t0 = pts[0]!.t;
  const span = pts.at(-1)!.t - t0;
  const quarter = (q: number): number[] => pts.filter((p) => p.t >= t0 + (q * span) / 4 && (q === 3 ? true : p.t < t0 + ((q + 1) * span) / 4)).map((p) => p.v);
  const secondQuarter = median(quarter(1));
  const lastQuarter = median(quarter(3));
  const bound = secondQuarter * (1 + relTol) + absTol;
  const half = pts.filter((p) => p.t >= t0 + span / 2).map((p) => ({ x: p.t / 3600, y: p.v }));
  return {
    secondQuarter,
    lastQuarter,
    growth: secondQuarter === 0 ? NaN : lastQuarter / secondQuarter - 1,
    slopePerHour: slope(half),
    bound,
    flat: lastQuarter <= bound,
  };
}

/** One destination's books: every acknowledged hit delivered or decided otherwise. */
export interface Books {
  destination: string;
  /** Hits answered 2xx (each is one event for every destination). */
  acknowledged: number;
  /** `tagwarden_deliveries_total{outcome="delivered"}`. */
  delivered: number;
  /** The sink's count: events it took (200) on this destination's path. */
  sinkTook: number;
  /** Final decisions that are not a send: drop (consent, policy), failed (render, refused). */
  dropped: number;
  failed: number;
  /** After a forward: `deliveries_total` dropped (a revocation before the send) and failed (given up: a dead letter). */
  deliveryDropped: number;
  deliveryFailed: number;
  /** Not finished when counted: held, parked. Should be 0 after the drain. */
  held: number;
  parked: number;
  /** Considered (received − refused by the journal) + resumed − decisions − held: docs/monitoring.md's identity, 0 when it holds. */
  identityGap: number;
  /** acknowledged − (delivered + dropped + failed + deliveryDropped + deliveryFailed). */
  gap: number;
  balanced: boolean;
}

export interface BooksInput {
  destinations: readonly string[];
  acknowledged: number;
  /** The final scrape, after the drain. */
  scrape: Scrape;
  /** Events the sink took (200) per destination id. */
  sinkTook: Record<string, number>;
}

export function books(input: BooksInput): Books[] {
  const s = input.scrape;
  const received = total(s, 'tagwarden_events_received_total');
  const refused = total(s, 'tagwarden_events_rejected_total', { client: 'journal' });
  return input.destinations.map((destination) => {
    const d = { destination };
    const decisions = byLabel(s, 'tagwarden_decisions_total', 'outcome', d);
    const deliveries = byLabel(s, 'tagwarden_deliveries_total', 'outcome', d);
    const delivered = deliveries.delivered ?? 0;
    const dropped = decisions.drop ?? 0;
    const failed = decisions.failed ?? 0;
    const deliveryDropped = deliveries.dropped ?? 0;
    const deliveryFailed = deliveries.failed ?? 0;
    const held = total(s, 'tagwarden_held_events', d);
    const decided = Object.values(decisions).reduce((a, b) => a + b, 0);
    const resumed = total(s, 'tagwarden_events_resumed_total', d);
    const gap = input.acknowledged - (delivered + dropped + failed + deliveryDropped + deliveryFailed);
    return {
      destination,
      acknowledged: input.acknowledged,
      delivered,
      sinkTook: input.sinkTook[destination] ?? 0,
      dropped,
      failed,
      deliveryDropped,
      deliveryFailed,
      held,
      parked: deliveries.parked ?? 0,
      identityGap: received - refused + resumed - decided - held,
      gap,
      balanced: gap === 0 && delivered === (input.sinkTook[destination] ?? 0),
    };
  });
}

export interface Criterion {
  name: string;
  pass: boolean;
  figure: string;
}

export const RSS_REL_TOL = 0.1;
export const FD_REL_TOL = 0.1;
export const FD_ABS_TOL = 4;
export const MAX_LAG_P99_MS = 50;

export interface VerdictInput {
  load: readonly SoakSample[];
  /** The sample after the drain (or the last one taken when the drain gave up). */
  afterDrain: SoakSample | undefined;
  drainedAfterS: number | undefined;
  books: readonly Books[];
  /** Hits answered other than 2xx, or not answered, over the soak. */
  refused: number;
  errors: number;
  /** Hits answered 2xx between the middle of the second quarter and the middle of the last (what a leak would be spread over). */
  hitsBetweenQuarters: number;
}

const mib = (n: number): string => `${n.toFixed(1)} MiB`;

export function verdicts(v: VerdictInput): Criterion[] {
  const out: Criterion[] = [];
  const rss = flatness(v.load.map((s) => ({ t: s.t, v: s.rssMiB })), RSS_REL_TOL, 0);
  out.push(
    rss === undefined
      ? { name: 'RSS flat after warm-up', pass: false, figure: 'too few samples' }
      : {
          name: `RSS flat after warm-up (last-quarter median <= second-quarter median +${RSS_REL_TOL * 100}%)`,
          pass: rss.flat,
          figure:
            `${mib(rss.secondQuarter)} -> ${mib(rss.lastQuarter)} (${(rss.growth * 100).toFixed(1)}%; bound ${mib(rss.bound)}); ` +
            `fit over the second half ${rss.slopePerHour >= 0 ? '+' : ''}${rss.slopePerHour.toFixed(1)} MiB/h` +
            (v.hitsBetweenQuarters > 0 ? `; the bound allows ${(((rss.bound - rss.secondQuarter) * 2 ** 20) / v.hitsBetweenQuarters).toFixed(0)} B kept per hit` : ''),
        },
  );
  const heap = flatness(v.load.map((s) => ({ t: s.t, v: s.heapMiB })), RSS_REL_TOL, 0);
  if (heap !== undefined) {
    out.push({
      name: `V8 heap used flat after warm-up (same rule, informational)`,
      pass: heap.flat,
      figure: `${mib(heap.secondQuarter)} -> ${mib(heap.lastQuarter)} (${(heap.growth * 100).toFixed(1)}%); fit ${heap.slopePerHour >= 0 ? '+' : ''}${heap.slopePerHour.toFixed(1)} MiB/h`,
    });
  }
  const reachable = flatness(v.load.map((s) => ({ t: s.t, v: s.heapAfterGcMiB })), RSS_REL_TOL, 0);
  if (reachable !== undefined) {
    out.push({
      name: 'V8 heap after a full GC flat after warm-up (--gc-probe; same rule)',
      pass: reachable.flat,
      figure: `${mib(reachable.secondQuarter)} -> ${mib(reachable.lastQuarter)} (${(reachable.growth * 100).toFixed(1)}%); fit ${reachable.slopePerHour >= 0 ? '+' : ''}${reachable.slopePerHour.toFixed(1)} MiB/h`,
    });
  }
  const fd = flatness(v.load.map((s) => ({ t: s.t, v: s.fds })), FD_REL_TOL, FD_ABS_TOL);
  out.push(
    fd === undefined
      ? { name: 'open FDs flat after warm-up', pass: false, figure: 'too few samples' }
      : {
          name: `open FDs flat after warm-up (last-quarter median <= second-quarter median +${FD_REL_TOL * 100}% +${FD_ABS_TOL})`,
          pass: fd.flat,
          figure: `${fd.secondQuarter} -> ${fd.lastQuarter} (bound ${fd.bound.toFixed(1)}); max ${Math.max(...v.load.map((s) => s.fds ?? 0))}`,
        },
  );
  const lagged = v.load.filter((s) => s.lagP99Ms !== undefined);
  const worst = lagged.reduce<SoakSample | undefined>((w, s) => (w === undefined || s.lagP99Ms! > w.lagP99Ms! ? s : w), undefined);
  const lags = lagged.map((s) => s.lagP99Ms!);
  const over = lags.filter((l) => l > MAX_LAG_P99_MS).length;
  out.push({
    name: `event-loop lag p99 <= ${MAX_LAG_P99_MS} ms in every sampling interval`,
    pass: worst !== undefined && worst.lagP99Ms! <= MAX_LAG_P99_MS,
    figure:
      worst === undefined
        ? 'not read'
        : `worst interval ${worst.lagP99Ms!.toFixed(1)} ms at t=${worst.t.toFixed(0)} s (other CPU then ${worst.otherCpu === undefined ? 'n/a' : `${(worst.otherCpu * 100).toFixed(0)}%`}), ` +
          `median ${median(lags).toFixed(1)} ms; ${over} of ${lags.length} intervals over ${MAX_LAG_P99_MS} ms`,
  });
  const a = v.afterDrain;
  const left = a === undefined ? undefined : a.queued + a.held + (a.journalPending ?? 0);
  out.push({
    name: 'queues back to 0 after the load (queued, held, journal pending)',
    pass: left === 0,
    figure:
      a === undefined
        ? 'not read'
        : `queued ${a.queued}, held ${a.held}, journal pending ${a.journalPending ?? 'n/a'} (dead letters ${a.journalDead ?? 'n/a'}), ` +
          (v.drainedAfterS === undefined ? 'did not drain in time' : `${v.drainedAfterS.toFixed(1)} s after the last hit`),
  });
  for (const b of v.books) {
    out.push({
      name: `${b.destination}: acknowledged = delivered + decided (and the sink took what was delivered)`,
      pass: b.balanced,
      figure:
        `${b.acknowledged} = ${b.delivered} delivered + ${b.dropped} dropped + ${b.failed} failed + ${b.deliveryDropped} dropped before send + ${b.deliveryFailed} dead` +
        ` (gap ${b.gap}; sink took ${b.sinkTook}; held ${b.held}, parked ${b.parked}; monitoring identity gap ${b.identityGap})`,
    });
  }
  out.push({ name: 'every hit answered 2xx (none refused, none unanswered)', pass: v.refused === 0 && v.errors === 0, figure: `${v.refused} non-2xx, ${v.errors} without an answer` });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Printing

const fmt = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const pct = (n: number | undefined): string => (n === undefined ? 'n/a' : `${(n * 100).toFixed(0)}%`);

/**
 * The samples, condensed to about `rows` rows: consecutive samples merged (counts summed, the
 * gauges as at the row's last sample, lag and latency as the worst of the merged intervals).
 */
export function sampleTable(samples: readonly SoakSample[], rows = 24): string[] {
  const per = Math.max(1, Math.ceil(samples.length / rows));
  const out: string[][] = [];
  for (let i = 0; i < samples.length; i += per) {
    const g = samples.slice(i, i + per);
    const last = g.at(-1)!;
    const sum = (f: (s: SoakSample) => number): number => g.reduce((a, s) => a + f(s), 0);
    const worst = (f: (s: SoakSample) => number | undefined): number | undefined => {
      const xs = g.map(f).filter((x): x is number => x !== undefined && !Number.isNaN(x));
      return xs.length === 0 ? undefined : Math.max(...xs);
    };
    const avg = (f: (s: SoakSample) => number | undefined): number | undefined => {
      const xs = g.map(f).filter((x): x is number => x !== undefined);
      return xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    out.push([
      `${fmt(last.t)}${last.phase === 'drain' ? ' (drain)' : ''}`,
      fmt(last.rssMiB, 1),
      fmt(last.heapMiB, 1),
      fmt(last.heapTotalMiB, 1),
      fmt(last.externalMiB, 1),
      fmt(last.fds),
      fmt(worst((s) => s.lagP99Ms), 1),
      fmt(worst((s) => s.lagMaxMs), 0),
      fmt(worst((s) => s.gcMaxMs), 0),
      String(last.queued),
      String(last.inFlight),
      String(last.awaitingRetry),
      String(last.held),
      fmt(last.journalPending),
      String(sum((s) => s.ok)),
      String(sum((s) => s.non2xx + s.errors)),
      fmt(worst((s) => s.p50Ms), 1),
      fmt(worst((s) => s.p99Ms), 1),
      `${sum((s) => s.verifyAnswered)}/${sum((s) => s.verify429)}`,
      pct(avg((s) => s.tagwardenCpu)),
      pct(avg((s) => s.otherCpu)),
    ]);
  }
  return table(
    ['t s', 'RSS MiB', 'heap MiB', 'heap total', 'ext MiB', 'FDs', 'lag p99 ms', 'lag max ms', 'GC max ms', 'queued', 'in flight', 'retrying', 'held', 'journal', '2xx', 'refused', 'p50 ms', 'p99 ms', 'verify ok/429', 'tw CPU', 'other CPU'],
    out,
  );
}

export function verdictTable(criteria: readonly Criterion[]): string[] {
  return table(
    ['criterion', 'verdict', 'figure'],
    criteria.map((c) => [c.name, c.pass ? 'PASS' : 'FAIL', c.figure]),
    3,
  );
}
