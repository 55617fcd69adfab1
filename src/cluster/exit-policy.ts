/**
 * What the supervising process does when a worker exits (docs/deployment.md, "Several processes
 * on one host"). Pure: the supervisor passes what it knows about the exit and acts on the answer.
 */
import { backoffCeilingMs } from '../lib/backoff.ts';

export interface WorkerExit {
  /** The supervisor is stopping (SIGTERM/SIGINT): every worker is on its way out. */
  stopping: boolean;
  /** The supervisor asked this worker to go (a rolling restart replaced it). */
  retired: boolean;
  /**
   * A rolling restart's new worker: until it listens, its exit stops the roll (the old workers keep
   * serving) rather than being restarted: a new config or release that does not start would only
   * fail again.
   */
  replacing: boolean;
  /** The worker had told the supervisor it was listening. */
  listened: boolean;
  /** Every worker of the first start has listened once: the configuration is known to work. */
  started: boolean;
  /** How long the worker ran, ms. */
  uptimeMs: number;
  /** Unexpected exits in a row so far, this one not counted (reset once a worker ran STABLE_MS). */
  crashes: number;
}

export type ExitAction =
  /** Expected: nothing to do (the supervisor counts down to its own exit when stopping). */
  | { kind: 'none' }
  /** A worker died unexpectedly: fork another one after `delayMs`; `crashes` is the new streak. */
  | { kind: 'restart'; delayMs: number; crashes: number }
  /**
   * A worker of the first start exited before it listened: the configuration, the port or the
   * store is wrong, and every other worker would fail alike. Stop the rest and exit non-zero.
   */
  | { kind: 'give_up' };

/** A worker that ran this long before dying was healthy: its death starts a new streak. */
export const STABLE_MS = 60_000;
/** First restart delay, doubled per crash in a row up to MAX_RESTART_DELAY_MS. */
export const RESTART_BASE_MS = 500;
export const MAX_RESTART_DELAY_MS = 30_000;

export function afterWorkerExit(e: WorkerExit): ExitAction {
  if (e.stopping || e.retired || (e.replacing && !e.listened)) return { kind: 'none' };
  if (!e.started && !e.listened) return { kind: 'give_up' };
  const crashes = e.uptimeMs >= STABLE_MS ? 1 : e.crashes + 1;
  // No jitter: the workers of one host do not stampede a shared server by restarting.
  return { kind: 'restart', delayMs: backoffCeilingMs(crashes, { baseMs: RESTART_BASE_MS, maxMs: MAX_RESTART_DELAY_MS }), crashes };
}
