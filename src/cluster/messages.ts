/**
 * The messages between the supervising process and its workers, over cluster IPC
 * (docs/deployment.md). Every one carries `tw` (its kind): cluster's own messages and any other
 * library's pass by untouched.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

/** A worker's metrics as prom-client's getMetricsAsJSON gives them. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type ToPrimary =
  /** The worker's server is listening: a rolling restart may now retire the worker it replaces. */
  | { tw: 'listening' }
  /** GET /metrics on that worker: the supervisor gathers every worker's and answers `metrics`. */
  | { tw: 'scrape'; id: number }
  /** The answer to `collect`. */
  | { tw: 'collected'; id: number; metrics: MetricsJson }
  /** A consent change committed by this worker: the others must forget what they cached. */
  | { tw: 'consent_changed'; siteId: string; subjectKey: string };

export type ToWorker =
  /** Send your metrics (answer `collected` with the same id). */
  | { tw: 'collect'; id: number }
  /** The answer to `scrape`: every worker's metrics added up, Prometheus text. */
  | { tw: 'metrics'; id: number; text: string }
  /** Another worker changed this subject's consent. */
  | { tw: 'consent_changed'; siteId: string; subjectKey: string };

const KINDS_TO_PRIMARY = new Set(['listening', 'scrape', 'collected', 'consent_changed']);
const KINDS_TO_WORKER = new Set(['collect', 'metrics', 'consent_changed']);

function kind(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const tw = (m as { tw?: unknown }).tw;
  return typeof tw === 'string' ? tw : undefined;
}

/** Only the shape is checked: both ends are this program, the guard keeps others' messages out. */
export function isToPrimary(m: unknown): m is ToPrimary {
  return KINDS_TO_PRIMARY.has(kind(m) ?? '');
}

export function isToWorker(m: unknown): m is ToWorker {
  return KINDS_TO_WORKER.has(kind(m) ?? '');
}
