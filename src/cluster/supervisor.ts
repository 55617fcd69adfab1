/**
 * The supervising process of `server.workers` above 1 (docs/deployment.md, "Several processes on
 * one host"): forks the workers (each runs src/main.ts as a single instance would, sharing the
 * store), restarts one that dies unexpectedly (src/cluster/exit-policy.ts), replaces them one at a
 * time on a rolling restart, stops them all on stop(), and relays what one worker says for all
 * (the metrics of every worker for /metrics, consent changes). It serves no request itself and
 * opens no store. src/main.ts calls it and exits with what `done` resolves to.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { AggregatorRegistry } from 'prom-client';
import { aggregateMetrics } from './aggregate.ts';
import { afterWorkerExit } from './exit-policy.ts';
import { isToPrimary, type MetricsJson, type ToPrimary, type ToWorker } from './messages.ts';

export interface SupervisorOptions {
  workers: number;
  log: Logger;
  clock: Clock;
  /** server.shutdownGraceMs: a worker told to stop gets this plus a margin before it is killed. */
  graceMs: number;
  /** How long a new worker may take to listen before a rolling restart gives up on it. */
  startTimeoutMs?: number;
  /** How long a scrape waits for each worker's metrics; the ones that did not answer are left out. */
  collectTimeoutMs?: number;
}

export interface Supervisor {
  /** Resolves once every worker of the first start listens; rejects if one could not start. */
  started: Promise<void>;
  /** Asks every worker to stop (each finishes as a single instance does on SIGTERM). Idempotent. */
  stop(signal: string): void;
  /** Replaces the workers one at a time: the new one listens before the old one drains. */
  roll(): Promise<void>;
  /** The exit code, once every worker exited after stop() (0 when each exited 0) or the start failed (1). */
  done: Promise<number>;
}

interface Slot {
  worker: Worker;
  startedAt: number;
  listened: boolean;
  retired: boolean;
  /** Forked by a rolling restart to replace another. */
  replacing: boolean;
  /** Settled by the worker's listening message or its exit. */
  onListening: (() => void)[];
  exited: Promise<void>;
}

/** Margin beyond the grace for a worker to exit on its own (its own deadline is grace + 5 s). */
const KILL_MARGIN_MS = 10_000;

export function startSupervisor(o: SupervisorOptions): Supervisor {
  const { log, clock } = o;
  const slots = new Map<number, Slot>();
  let stopping = false;
  let started = false;
  let rolling: Promise<void> | undefined;
  let crashes = 0;
  let restarts = 0;
  let failedExits = 0;
  let scrapeId = 0;
  const restartTimers = new Set<TimerHandle>();
  const collecting = new Map<number, { pending: Set<number>; results: MetricsJson[]; finish: () => void }>();
  // Each worker's counters as the last scrape showed them; once it exits they stay in the sum
  // (departed), so a restart never makes a summed counter go down (Prometheus would read a reset).
  const lastSeen = new Map<number, MetricsJson>();
  let departed: MetricsJson[] = [];

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let resolveStarted!: () => void;
  let rejectStarted!: (err: Error) => void;
  const startedPromise = new Promise<void>((res, rej) => {
    resolveStarted = res;
    rejectStarted = rej;
  });
  // An unobserved rejection would crash the process before main.ts reads `done`.
  startedPromise.catch(() => undefined);

  const send = (w: Worker, m: ToWorker): void => {
    if (w.isConnected()) w.send(m, (err: Error | null) => (err === null ? undefined : log.debug({ err, worker: w.process.pid }, 'message to a worker not sent')));
  };

  function fork(replacing = false): Slot {
    const worker = cluster.fork();
    let exitedResolve!: () => void;
    const slot: Slot = { worker, startedAt: clock.now(), listened: false, retired: false, replacing, onListening: [], exited: new Promise<void>((r) => (exitedResolve = r)) };
    slots.set(worker.id, slot);
    worker.on('message', (m: unknown) => {
      if (isToPrimary(m)) onMessage(slot, m);
    });
    worker.on('exit', (code: number | null, signal: string | null) => {
      slots.delete(worker.id);
      exitedResolve();
      const seen = lastSeen.get(worker.id);
      lastSeen.delete(worker.id);
      if (seen !== undefined) departed.push(monotonic(seen));
      // Merged into one now and then, so restarts do not grow the list without end.
      if (departed.length > 8) {
        const merging = departed;
        departed = [];
        AggregatorRegistry.aggregate(merging)
          .getMetricsAsJSON()
          .then((merged) => void departed.unshift(merged as MetricsJson))
          .catch(() => undefined);
      }
      for (const f of slot.onListening.splice(0)) f();
      // A scrape waiting on this worker need not wait for its timeout.
      for (const c of collecting.values()) if (c.pending.delete(worker.id) && c.pending.size === 0) c.finish();
      onExit(slot, code, signal);
    });
    return slot;
  }

  function onMessage(slot: Slot, m: ToPrimary): void {
    switch (m.tw) {
      case 'listening': {
        slot.listened = true;
        for (const f of slot.onListening.splice(0)) f();
        if (!started && [...slots.values()].filter((s) => s.listened).length >= o.workers) {
          started = true;
          log.info({ workers: o.workers }, 'every worker listening');
          resolveStarted();
        }
        return;
      }
      case 'consent_changed': {
        // To every other worker; the sender invalidated its own caches at commit.
        for (const s of slots.values()) if (s !== slot) send(s.worker, m);
        return;
      }
      case 'scrape':
        scrape(slot, m.id);
        return;
      case 'collected': {
        const c = collecting.get(m.id);
        if (c === undefined || !c.pending.delete(slot.worker.id)) return;
        c.results.push(m.metrics);
        lastSeen.set(slot.worker.id, m.metrics);
        if (c.pending.size === 0) c.finish();
        return;
      }
    }
  }

  /** Every worker's metrics (those listening or draining), added up, for the worker that was scraped. */
  function scrape(from: Slot, replyId: number): void {
    const id = ++scrapeId;
    const targets = [...slots.values()].filter((s) => s.listened);
    const results: MetricsJson[] = [];
    const armed: { timer?: TimerHandle } = {};
    const finish = (): void => {
      if (!collecting.delete(id)) return;
      if (armed.timer !== undefined) clock.clearTimeout(armed.timer);
      aggregateMetrics([...results, ...departed], { workers: results.length, restarts })
        .metrics()
        .then((text) => send(from.worker, { tw: 'metrics', id: replyId, text }))
        .catch((err: unknown) => log.error({ err }, 'metrics of the workers could not be added up'));
    };
    collecting.set(id, { pending: new Set(targets.map((s) => s.worker.id)), results, finish });
    if (targets.length === 0) return finish();
    armed.timer = clock.setTimeout(finish, o.collectTimeoutMs ?? 2_000);
    for (const s of targets) send(s.worker, { tw: 'collect', id });
  }

  function onExit(slot: Slot, code: number | null, signal: string | null): void {
    const pid = slot.worker.process.pid;
    // The exit code says how the stop went: a crash before it (restarted) is not a failed stop.
    if (stopping && code !== 0) failedExits += 1;
    const action = afterWorkerExit({ stopping, retired: slot.retired, replacing: slot.replacing, listened: slot.listened, started, uptimeMs: clock.now() - slot.startedAt, crashes });
    if (action.kind === 'none') {
      log.info({ worker: pid, code, signal }, 'worker exited');
    } else if (action.kind === 'give_up') {
      log.error({ worker: pid, code, signal }, 'a worker exited before it listened; stopping the others');
      rejectStarted(new ConfigError('a worker exited before it listened (its error is above)'));
      stop('worker failed to start');
      failedExits = Math.max(failedExits, 1);
    } else {
      crashes = action.crashes;
      log.error({ worker: pid, code, signal, restartInMs: action.delayMs, crashesInARow: crashes }, 'worker died; restarting it');
      const t = clock.setTimeout(() => {
        restartTimers.delete(t);
        if (stopping) return;
        restarts += 1;
        fork();
      }, action.delayMs);
      restartTimers.add(t);
    }
    if (stopping && slots.size === 0) resolveDone(failedExits === 0 ? 0 : 1);
  }

  /** SIGTERM to one worker (it stops as main.ts does), SIGKILL if it outlives the grace and a margin. */
  function terminate(slot: Slot): Promise<void> {
    if (slot.worker.process.exitCode === null && slot.worker.process.signalCode === null) slot.worker.process.kill('SIGTERM');
    const t = clock.setTimeout(() => {
      log.error({ worker: slot.worker.process.pid }, 'worker did not stop in time; killing it');
      slot.worker.process.kill('SIGKILL');
    }, o.graceMs + KILL_MARGIN_MS);
    return slot.exited.then(() => clock.clearTimeout(t));
  }

  function stop(signal: string): void {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: slots.size }, 'stopping the workers');
    for (const t of restartTimers) clock.clearTimeout(t);
    restartTimers.clear();
    if (slots.size === 0) resolveDone(failedExits === 0 ? 0 : 1);
    for (const s of slots.values()) void terminate(s);
  }

  function listeningOrGone(slot: Slot, timeoutMs: number): Promise<boolean> {
    if (slot.listened) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const t = clock.setTimeout(() => resolve(false), timeoutMs);
      slot.onListening.push(() => {
        clock.clearTimeout(t);
        resolve(slot.listened);
      });
    });
  }

  async function rollAll(): Promise<void> {
    const old = [...slots.values()].filter((s) => !s.retired);
    log.info({ workers: old.length }, 'rolling restart');
    for (const s of old) {
      if (stopping) return;
      if (!slots.has(s.worker.id)) continue;
      const fresh = fork(true);
      if (!(await listeningOrGone(fresh, o.startTimeoutMs ?? 60_000))) {
        log.error({ worker: fresh.worker.process.pid }, 'rolling restart stopped: a new worker did not listen; the old ones keep serving');
        fresh.retired = true;
        await terminate(fresh);
        return;
      }
      s.retired = true;
      await terminate(s);
    }
    log.info({ workers: slots.size }, 'rolling restart done');
  }

  for (let i = 0; i < o.workers; i++) fork();

  return {
    started: startedPromise,
    stop,
    roll() {
      if (stopping) return Promise.resolve();
      // A second signal during a roll joins it rather than starting another.
      rolling ??= rollAll().finally(() => (rolling = undefined));
      return rolling;
    },
    done,
  };
}

/** The counters and histograms of a scrape (what only grows), without the supervisor's own. */
function monotonic(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => (String(m.type) === 'counter' || String(m.type) === 'histogram') && m.name !== 'tagwarden_worker_restarts_total');
}
