import type { Clock, TimerHandle } from '../lib/clock.ts';
import { unrefTimer } from '../lib/every.ts';
import type { Metrics } from './metrics.ts';

/**
 * The dashboard's delivery overview over time (docs/ui.md): samples of the very counters /metrics
 * shows (`tagwarden_decisions_total`, `tagwarden_held_events`, `tagwarden_deliveries_total`), taken
 * on the injected clock at bucket boundaries and kept in a bounded ring per window. A bucket's value
 * is the difference of the samples around it; the current bucket ends at a fresh read. So a window's
 * totals are the counters now less the counters at its start: the dashboard and the metrics agree
 * by construction. Per instance, in memory: lost at a restart (the counters start again at 0 too).
 */
export const OVERVIEW_WINDOWS = {
  '15m': { spanMs: 15 * 60_000, bucketMs: 15_000 },
  '1h': { spanMs: 3_600_000, bucketMs: 30_000 },
  '6h': { spanMs: 6 * 3_600_000, bucketMs: 180_000 },
  '24h': { spanMs: 24 * 3_600_000, bucketMs: 720_000 },
} as const;
export type OverviewWindow = keyof typeof OVERVIEW_WINDOWS;
export const OVERVIEW_WINDOW_NAMES = ['15m', '1h', '6h', '24h'] as const satisfies readonly OverviewWindow[];

/** Every window's bucket is a multiple of it: one sample per tick serves them all. */
const TICK_MS = 15_000;

/**
 * The series of one destination. received = forwarded + redacted + filtered + failed + held, per
 * bucket and in total (docs/monitoring.md, "Counts that add up"): `held` is the change in events
 * held (holds begun less holds finally decided), so it can be negative in a bucket where more
 * holds ended than began. `filtered` is every drop (consent, policy, template skip, vendor rule),
 * its reasons in `filteredReasons`. The delivery side: `retried` (retry_scheduled, per attempt),
 * `dead` (given up: the dead letters), `delivered`, `revoked` (consent revoked before the send).
 */
export const SERIES = ['received', 'forwarded', 'redacted', 'filtered', 'failed', 'held', 'retried', 'dead', 'delivered', 'revoked'] as const;
export type SeriesName = (typeof SERIES)[number];

export interface DestinationOverview {
  id: string;
  template: string;
  series: Record<SeriesName, number[]>;
  totals: Record<SeriesName, number>;
  filteredReasons: Record<string, number>;
  /** `tagwarden_held_events` now. */
  heldNow: number;
}

export interface Overview {
  window: OverviewWindow;
  bucketMs: number;
  start: number;
  /** Each bucket's start (ms); the last one is the current, partial bucket. */
  buckets: number[];
  destinations: DestinationOverview[];
}

export interface History {
  overview(window: OverviewWindow, destinations: readonly { id: string; template: string }[]): Promise<Overview>;
  /** Resolves once the sample being taken (if any) is stored; for tests driving a fake clock. */
  idle(): Promise<void>;
  stop(): void;
}

/** Cumulative counts of one destination at one moment. */
interface Counts {
  forward: number;
  redact: number;
  drop: number;
  failed: number;
  held: number;
  retried: number;
  dead: number;
  delivered: number;
  revoked: number;
  dropReasons: Map<string, number>;
}
type Snapshot = ReadonlyMap<string, Counts>;
const EMPTY: Snapshot = new Map();

const zero = (): Counts => ({ forward: 0, redact: 0, drop: 0, failed: 0, held: 0, retried: 0, dead: 0, delivered: 0, revoked: 0, dropReasons: new Map() });
const DECISION_FIELD: Record<string, 'forward' | 'redact' | 'drop' | 'failed'> = { forward: 'forward', redact: 'redact', drop: 'drop', failed: 'failed' };
const DELIVERY_FIELD: Record<string, 'retried' | 'dead' | 'delivered' | 'revoked'> = { retry_scheduled: 'retried', failed: 'dead', delivered: 'delivered', dropped: 'revoked' };

type Sources = Pick<Metrics, 'decisions' | 'heldEvents' | 'deliveries'>;

/** The counters now, per destination (prom-client's public get(), the values /metrics renders). */
async function read(metrics: Sources): Promise<Snapshot> {
  const out = new Map<string, Counts>();
  const of = (destination: unknown): Counts | undefined => {
    if (typeof destination !== 'string') return undefined;
    let c = out.get(destination);
    if (c === undefined) out.set(destination, (c = zero()));
    return c;
  };
  const [decisions, held, deliveries] = await Promise.all([metrics.decisions.get(), metrics.heldEvents.get(), metrics.deliveries.get()]);
  for (const v of decisions.values) {
    const field = DECISION_FIELD[String(v.labels.outcome)];
    const c = of(v.labels.destination);
    if (field === undefined || c === undefined) continue;
    c[field] += v.value;
    if (field === 'drop') {
      const reason = String(v.labels.reason ?? '');
      c.dropReasons.set(reason, (c.dropReasons.get(reason) ?? 0) + v.value);
    }
  }
  for (const v of held.values) {
    const c = of(v.labels.destination);
    if (c !== undefined) c.held += v.value;
  }
  for (const v of deliveries.values) {
    const field = DELIVERY_FIELD[String(v.labels.outcome)];
    const c = of(v.labels.destination);
    if (field !== undefined && c !== undefined) c[field] += v.value;
  }
  return out;
}

/** The series' values between two snapshots of one destination. */
function delta(a: Counts | undefined, b: Counts | undefined): Record<SeriesName, number> {
  const x = a ?? zero();
  const y = b ?? zero();
  const d = (k: Exclude<keyof Counts, 'dropReasons'>): number => y[k] - x[k];
  const forwarded = d('forward');
  const redacted = d('redact');
  const filtered = d('drop');
  const failed = d('failed');
  const held = d('held');
  return { received: forwarded + redacted + filtered + failed + held, forwarded, redacted, filtered, failed, held, retried: d('retried'), dead: d('dead'), delivered: d('delivered'), revoked: d('revoked') };
}

interface Sample {
  at: number;
  snapshot: Snapshot;
}

export function createHistory(deps: { metrics: Sources; clock: Clock }): History {
  const { metrics, clock } = deps;
  const rings = new Map(OVERVIEW_WINDOW_NAMES.map((w) => [w, { samples: [] as Sample[], trimmed: false }]));
  let timer: TimerHandle | undefined;
  let stopped = false;
  let pending: Promise<void> = Promise.resolve();

  function sample(): void {
    const now = clock.now();
    pending = pending.then(async () => {
      // A failed read loses one sample (the next bucket takes its counts), never the chain.
      const snapshot = await read(metrics).catch(() => undefined);
      if (snapshot === undefined) return;
      for (const w of OVERVIEW_WINDOW_NAMES) {
        const { bucketMs, spanMs } = OVERVIEW_WINDOWS[w];
        const ring = rings.get(w)!;
        const at = Math.floor(now / bucketMs) * bucketMs;
        const last = ring.samples.at(-1);
        if (last !== undefined && last.at >= at) continue;
        ring.samples.push({ at, snapshot });
        // One more than the buckets shown: the start of the oldest bucket.
        if (ring.samples.length > spanMs / bucketMs + 1) {
          ring.samples.shift();
          ring.trimmed = true;
        }
      }
    });
  }
  function arm(): void {
    if (stopped) return;
    const now = clock.now();
    // At the next multiple of the tick, so samples fall on bucket boundaries.
    timer = unrefTimer(
      clock.setTimeout(
        () => {
          sample();
          arm();
        },
        TICK_MS - (now % TICK_MS),
      ),
    );
  }
  arm();

  return {
    async overview(window, destinations) {
      const { bucketMs, spanMs } = OVERVIEW_WINDOWS[window];
      const n = spanMs / bucketMs;
      const now = clock.now();
      await pending;
      const live = await read(metrics);
      const ring = rings.get(window)!;
      /** The counters at `t`: the latest sample at or before it; before the first one, 0 (the counters' start) unless older samples were let go. */
      const at = (t: number): Snapshot => {
        let found: Snapshot | undefined;
        for (const s of ring.samples) {
          if (s.at > t) break;
          found = s.snapshot;
        }
        return found ?? (ring.trimmed ? (ring.samples[0]?.snapshot ?? EMPTY) : EMPTY);
      };
      const last = Math.floor(now / bucketMs) * bucketMs;
      const buckets = Array.from({ length: n }, (_, i) => last - (n - 1 - i) * bucketMs);
      const edges = [...buckets.map(at), live];
      const first = edges[0]!;
      return {
        window,
        bucketMs,
        start: buckets[0]!,
        buckets,
        destinations: destinations.map(({ id, template }) => {
          const series = Object.fromEntries(SERIES.map((k) => [k, [] as number[]])) as Record<SeriesName, number[]>;
          for (let i = 0; i < n; i++) {
            const d = delta(edges[i]!.get(id), edges[i + 1]!.get(id));
            for (const k of SERIES) series[k].push(d[k]);
          }
          const from = first.get(id);
          const to = live.get(id);
          const filteredReasons: Record<string, number> = {};
          for (const [reason, count] of to?.dropReasons ?? []) {
            const diff = count - (from?.dropReasons.get(reason) ?? 0);
            if (diff !== 0) filteredReasons[reason] = diff;
          }
          return { id, template, series, totals: delta(from, to), filteredReasons, heldNow: to?.held ?? 0 };
        }),
      };
    },
    idle: () => pending,
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
