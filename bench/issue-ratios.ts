/**
 * The ratios issue 16 asks of the ingest bench, in one markdown table: each figure over a baseline
 * measured in the same run, with its goal. Also the cores formula for `server.workers`, filled in
 * from the same run's CPU per hit.
 */
import type { TargetName, TargetSummary } from './ingest.ts';
import { markdownTable } from './tally.ts';

/** Tagwarden with 3 destinations and the journal within this multiple of Express's CPU per hit... */
export const MAX_CPU_RATIO_3_DESTINATIONS = 1.6;
/** ...ingest alone at least this multiple of Express's hits/s... */
export const MIN_INGEST_RATIO = 1.2;
/** ...the forward path at least this multiple of a naive per-hit proxy's hits/s... */
export const MIN_FORWARD_RATIO = 3;
/** ...the journal costing at most 15% of hits/s (issue 11) and receipts at most 10% (issue 15). */
export const MIN_JOURNAL_RATIO = 0.85;
export const MIN_RECEIPTS_RATIO = 0.9;

type Metric = 'hits/s' | 'CPU per hit' | 'user CPU per hit';

interface RatioSpec {
  name: string;
  a: TargetName;
  b: TargetName;
  metric: Metric;
  /** `>=` or `<=` a value; absent: informational. */
  goal?: { op: '>=' | '<='; value: number };
}

const SPECS: readonly RatioSpec[] = [
  { name: 'tagwarden (3 destinations, journal) / express, CPU per hit', a: 'tagwarden', b: 'express', metric: 'CPU per hit', goal: { op: '<=', value: MAX_CPU_RATIO_3_DESTINATIONS } },
  // Informational: the same over user-mode CPU alone, without the kernel's per-response work, which
  // on a host with costly syscalls and wake-ups is a large share of every target and pulls ratios toward 1.
  { name: 'tagwarden (3 destinations, journal) / express, user CPU per hit', a: 'tagwarden', b: 'express', metric: 'user CPU per hit' },
  { name: 'ingest alone (no destinations) / express, hits/s', a: 'ingest', b: 'express', metric: 'hits/s', goal: { op: '>=', value: MIN_INGEST_RATIO } },
  { name: 'ingest alone / express, CPU per hit', a: 'ingest', b: 'express', metric: 'CPU per hit' },
  { name: 'ingest alone / express, user CPU per hit', a: 'ingest', b: 'express', metric: 'user CPU per hit' },
  { name: 'forward (webhook) / naive proxy, hits/s', a: 'forward', b: 'naiveproxy', metric: 'hits/s', goal: { op: '>=', value: MIN_FORWARD_RATIO } },
  { name: 'forward / naive proxy, CPU per hit', a: 'forward', b: 'naiveproxy', metric: 'CPU per hit' },
  { name: 'journal on / off (no store), hits/s', a: 'tagwarden', b: 'nojournal', metric: 'hits/s', goal: { op: '>=', value: MIN_JOURNAL_RATIO } },
  { name: 'journal on / off (no store), CPU per hit', a: 'tagwarden', b: 'nojournal', metric: 'CPU per hit' },
  { name: 'receipts on / off, hits/s', a: 'receipts', b: 'tagwarden', metric: 'hits/s', goal: { op: '>=', value: MIN_RECEIPTS_RATIO } },
  { name: 'receipts on / off, CPU per hit', a: 'receipts', b: 'tagwarden', metric: 'CPU per hit' },
  { name: 'workers 2 / 1, hits/s', a: 'workers2', b: 'tagwarden', metric: 'hits/s' },
  { name: 'workers 2 / 1, CPU per hit', a: 'workers2', b: 'tagwarden', metric: 'CPU per hit' },
];

function value(s: TargetSummary, metric: Metric): number | undefined {
  return metric === 'hits/s' ? s.hitsPerSec : metric === 'CPU per hit' ? s.cpuUsPerHit : s.userUsPerHit;
}

/**
 * Hits/s the formula of docs/performance.md ("Workers") predicts for `workers` processes: each
 * worker can serve 1e6 / t hits/s (t: one worker's CPU µs per hit), and the machine's `cores` are
 * shared with the load generator and the sink (g and s µs per hit):
 * min(workers × 1e6 / t, cores × 1e6 / (t + g + s)).
 */
export function predictedHitsPerSec(workers: number, cores: number, t: number, g: number, s: number): number {
  return Math.min((workers * 1e6) / t, (cores * 1e6) / (t + g + s));
}

export interface IssueRatioInput {
  summaries: readonly TargetSummary[];
  /** Acknowledged forward-path events the sink never received (summed over rounds); undefined when forward did not run. */
  forwardMissing: number | undefined;
  skipped: readonly { target: TargetName; reason: string }[];
  cores: number;
  /** With a fixed --rate every target serves the offered load when it can: hits/s ratios say nothing about capacity. */
  fixedRate: boolean;
}

export function issueRatioLines(input: IssueRatioInput): string[] {
  const find = (t: TargetName): TargetSummary | undefined => input.summaries.find((x) => x.target === t);
  const rows = SPECS.map((spec) => {
    const a = find(spec.a);
    const b = find(spec.b);
    const skipped = input.skipped.find((x) => x.target === spec.a || x.target === spec.b);
    const va = a === undefined ? undefined : value(a, spec.metric);
    const vb = b === undefined ? undefined : value(b, spec.metric);
    const goal = spec.goal === undefined ? '' : `${spec.goal.op} ${spec.goal.value}`;
    if (va === undefined || vb === undefined || vb === 0) {
      return [spec.name, skipped !== undefined ? `skipped (${skipped.target})` : `n/a (needs ${spec.a} and ${spec.b})`, goal, ''];
    }
    const ratio = va / vb;
    let verdict = '';
    if (spec.goal !== undefined) {
      if (input.fixedRate && spec.metric === 'hits/s') verdict = 'n/a at a fixed rate';
      else verdict = (spec.goal.op === '>=' ? ratio >= spec.goal.value : ratio <= spec.goal.value) ? 'HOLDS' : 'MISSED';
    }
    const detail = spec.metric === 'hits/s' ? `${va.toFixed(0)} / ${vb.toFixed(0)}` : `${va.toFixed(0)} / ${vb.toFixed(0)} us`;
    return [spec.name, `**${ratio.toFixed(2)}x** (${detail})`, goal, verdict];
  });
  if (input.forwardMissing !== undefined) {
    rows.push(['forward: acknowledged hits the sink never received', String(input.forwardMissing), '0', input.forwardMissing === 0 ? 'HOLDS' : 'MISSED']);
  }
  const out = ['', 'issue 16 ratios (each against a baseline measured in this run):', ...markdownTable(['ratio', 'measured', 'goal', 'verdict'], rows)];

  const one = find('tagwarden');
  if (one?.cpuUsPerHit !== undefined && one.generatorUsPerHit !== undefined && one.sinkUsPerHit !== undefined) {
    const t = one.cpuUsPerHit;
    const g = one.generatorUsPerHit;
    const s = one.sinkUsPerHit;
    const two = find('workers2');
    out.push(
      '',
      `workers formula (docs/performance.md): hits/s(N) = min(N x 1e6/t, cores x 1e6/(t+g+s)); from this run's tagwarden: t ${t.toFixed(0)} us, ` +
        `load generator g ${g.toFixed(0)} us, sink s ${s.toFixed(0)} us per hit, ${input.cores} cores:`,
      ...markdownTable(
        ['workers', 'predicted hits/s', 'measured hits/s'],
        [1, 2, 4].map((n) => [String(n), predictedHitsPerSec(n, input.cores, t, g, s).toFixed(0), n === 1 ? one.hitsPerSec.toFixed(0) : n === 2 && two !== undefined ? two.hitsPerSec.toFixed(0) : '']),
      ),
    );
  }
  for (const x of input.skipped) out.push(`skipped ${x.target}: ${x.reason}`);
  return out;
}
