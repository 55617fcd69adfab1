/**
 * /metrics with several workers: every worker's metrics added up by the supervisor
 * (docs/monitoring.md, "Several workers"). prom-client's AggregatorRegistry.aggregate merges the
 * series of the same name and labels with each metric's `aggregator` (sum unless the metric says
 * otherwise: src/observability/metrics.ts sets min on tagwarden_ready; prom-client's default
 * process metrics carry their own, e.g. first for the version, average for the event-loop lag).
 */
import { AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsJson } from './messages.ts';

export interface ClusterFigures {
  /** Workers whose metrics are in the sum. */
  workers: number;
  /** Workers the supervisor forked again after an unexpected exit, since it started. */
  restarts: number;
}

export function aggregateMetrics(perWorker: readonly MetricsJson[], figures: ClusterFigures): Registry {
  const registry: Registry = AggregatorRegistry.aggregate([...perWorker]);
  new Gauge({ name: 'tagwarden_workers', help: 'Worker processes whose metrics this scrape adds up (server.workers; fewer while one restarts or did not answer).', registers: [registry] }).set(
    figures.workers,
  );
  new Counter({ name: 'tagwarden_worker_restarts_total', help: 'Workers forked again after an unexpected exit (server.workers above 1).', registers: [registry] }).inc(figures.restarts);
  return registry;
}
