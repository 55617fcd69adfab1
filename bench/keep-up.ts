/**
 * Whether each destination's delivery keeps up with the hits (bench/verify.ts): a sampler records,
 * every `intervalMs` while the load runs and while the queues drain after it, the hits sent and
 * answered, what the sink (the fake vendors) has received, each destination's delivery queue in
 * Tagwarden (`GET /__bench/delivery`, bench/servers/tagwarden.ts) and Tagwarden's CPU time; then
 * `keepUp()` judges each destination from those samples and the shutdown counters.
 *
 * A destination keeps up when no hit was refused (503), every acknowledged event of it is
 * delivered or decided (dropped with a reason), and its queue is empty within DRAIN_BUDGET_MS of
 * the last hit: the backlog the load left behind is a moment's work, not a queue that grew.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuSeconds } from './proc-cpu.ts';

/** How soon after the last hit every queue must be empty for a destination to keep up. */
export const DRAIN_BUDGET_MS = 2_000;

/** One destination's queue, as `Delivery.stats()` reports it. */
export interface QueueStats {
  queued: number;
  open: number;
  ready: number;
  inFlight: number;
  awaitingRetry: number;
}

/** Event-loop delay (p99, max) and garbage-collection pauses (longest, total) over a sampling interval, in ms. */
export interface LoopStats {
  p99Ms: number;
  maxMs: number;
  gcMaxMs: number;
  gcTotalMs: number;
}

export interface Sample {
  /** Seconds since the load started. */
  t: number;
  /** Hits sent so far, answered 2xx, answered otherwise. */
  sent: number;
  ok: number;
  refused: number;
  /** Vendor requests and events the sink had received, by path (`/ga4`, ...). */
  sink: Record<string, { requests: number; events: number }>;
  /** Each destination's delivery queue in Tagwarden; undefined when the stats could not be read. */
  queues: Record<string, QueueStats> | undefined;
  /** Tagwarden's event-loop delay since the previous sample (ms): how long it was blocked at worst, and its GC pauses. */
  loop: LoopStats | undefined;
  /** CPU seconds (user + system) Tagwarden's process had used; undefined off Linux. */
  cpuS: number | undefined;
}

export interface SamplerOptions {
  sinkPort: number;
  tagwardenPort: number;
  tagwardenPid: number;
  intervalMs: number;
  /** Hits sent and answered so far (the load generator's counts). */
  counts: () => { sent: number; ok: number; refused: number };
}

export interface Sampler {
  readonly samples: Sample[];
  /** Takes one sample now (besides the periodic ones) and returns it. */
  sampleNow(): Promise<Sample>;
  /** Resolves with the time (ms after `since`) of the first sample with every queue empty, or undefined after `maxMs`. */
  drained(since: number, maxMs: number): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function getJson<T>(port: number, path: string): Promise<T | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2_000) });
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

const isEmpty = (s: Sample): boolean => s.queues !== undefined && Object.values(s.queues).every((q) => q.queued === 0);

/** Starts sampling at once; `t` counts from now. */
export function startSampler(o: SamplerOptions): Sampler {
  const startedAt = performance.now();
  const samples: Sample[] = [];
  let stopped = false;

  async function take(): Promise<Sample> {
    const [sink, stats] = await Promise.all([
      getJson<Record<string, { requests: number; events: number }>>(o.sinkPort, '/__stats'),
      getJson<Record<string, QueueStats> & { __loop?: LoopStats }>(o.tagwardenPort, '/__bench/delivery'),
    ]);
    const { __loop: loop, ...queues } = stats ?? {};
    const sample: Sample = {
      t: (performance.now() - startedAt) / 1000,
      ...o.counts(),
      sink: Object.fromEntries(Object.entries(sink ?? {}).map(([p, s]) => [p, { requests: s.requests, events: s.events }])),
      queues: stats === undefined ? undefined : queues,
      loop,
      cpuS: processCpuSeconds(o.tagwardenPid),
    };
    samples.push(sample);
    return sample;
  }

  const loop = (async () => {
    while (!stopped) {
      const due = performance.now() + o.intervalMs;
      await take();
      await sleep(Math.max(0, due - performance.now()));
    }
  })();

  return {
    samples,
    sampleNow: take,
    async drained(since, maxMs) {
      const deadline = since + maxMs;
      for (;;) {
        const s = await take();
        const at = startedAt + s.t * 1000;
        if (isEmpty(s)) return Math.max(0, at - since);
        if (at >= deadline) return undefined;
        await sleep(50);
      }
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export interface KeepUp {
  destination: string;
  /** Events of this destination in acknowledged (2xx) hits. */
  acknowledged: number;
  /** Delivered to the vendor (the `deliveries` counter). */
  delivered: number;
  /** Dropped on purpose with a reason: drop decisions and drops before a send. */
  decided: number;
  /** Still unsent when Tagwarden stopped, parked for after the restart (the journal keeps them: not lost). */
  parked: number;
  /** acknowledged = delivered + decided. */
  balanced: boolean;
  /** Vendor requests and events the sink received for this destination during the load (to its end). */
  requests: number;
  events: number;
  /** Vendor requests per second over the load, and in its busiest sampling interval. */
  requestsPerSec: number;
  peakRequestsPerSec: number;
  /** Largest queue sampled during the load, and the queue when the last hit had been answered. */
  maxQueued: number;
  queuedAtLoadEnd: number;
  /** When the queue was empty after the last hit (ms); undefined when it did not empty in time. */
  drainedAfterMs: number | undefined;
  keepsUp: boolean;
}

export interface KeepUpInput {
  /** Samples during the load, the last one taken when the last hit had been answered. */
  load: readonly Sample[];
  refused: number;
  okHits: number;
  drainedAfterMs: number | undefined;
  /** Sink path per destination id (`ga4` → `/ga4`). */
  sinkPath: (destination: string) => string;
  /** Tagwarden's shutdown counters (`decisions`, `deliveries`), label values joined by '/'. */
  counters: Record<string, Record<string, number>> | undefined;
}

function counted(values: Record<string, number> | undefined, match: (parts: string[]) => boolean): number {
  let n = 0;
  for (const [key, v] of Object.entries(values ?? {})) if (match(key.split('/'))) n += v;
  return n;
}

/** Judges every destination seen in the samples or the counters. Pure. */
export function keepUp(input: KeepUpInput): KeepUp[] {
  const first = input.load[0];
  const last = input.load.at(-1);
  const ids = new Set<string>();
  for (const s of input.load) for (const id of Object.keys(s.queues ?? {})) ids.add(id);
  for (const key of Object.keys(input.counters?.deliveries ?? {})) ids.add(key.split('/')[0]!);
  const out: KeepUp[] = [];
  for (const destination of [...ids].sort()) {
    const path = input.sinkPath(destination);
    const delivered = counted(input.counters?.deliveries, (p) => p[0] === destination && p[1] === 'delivered');
    const decided =
      counted(input.counters?.decisions, (p) => p[0] === destination && p[1] === 'drop') +
      counted(input.counters?.deliveries, (p) => p[0] === destination && p[1] === 'dropped');
    const parked = counted(input.counters?.deliveries, (p) => p[0] === destination && p[1] === 'parked');
    const reqAt = (s: Sample | undefined): number => s?.sink[path]?.requests ?? 0;
    const seconds = first !== undefined && last !== undefined ? last.t - first.t : 0;
    let peak = 0;
    for (let i = 1; i < input.load.length; i++) {
      const a = input.load[i - 1]!;
      const b = input.load[i]!;
      if (b.t - a.t >= 0.2) peak = Math.max(peak, (reqAt(b) - reqAt(a)) / (b.t - a.t));
    }
    const queued = input.load.map((s) => s.queues?.[destination]?.queued ?? 0);
    const balanced = input.okHits === delivered + decided;
    out.push({
      destination,
      acknowledged: input.okHits,
      delivered,
      decided,
      parked,
      balanced,
      requests: reqAt(last),
      events: last?.sink[path]?.events ?? 0,
      requestsPerSec: seconds > 0 ? (reqAt(last) - reqAt(first)) / seconds : 0,
      peakRequestsPerSec: peak,
      maxQueued: Math.max(0, ...queued),
      queuedAtLoadEnd: last?.queues?.[destination]?.queued ?? 0,
      drainedAfterMs: input.drainedAfterMs,
      keepsUp: input.refused === 0 && balanced && input.drainedAfterMs !== undefined && input.drainedAfterMs <= DRAIN_BUDGET_MS,
    });
  }
  return out;
}
