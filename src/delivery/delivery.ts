/**
 * Delivery: batches rendered events per destination, sends them with a bounded number of
 * requests in flight per destination, retries by the pure retry policy on timers (never by
 * blocking), re-checks consent before every retry, holds every request of a destination while a
 * vendor's Retry-After runs (pause.ts), splits a batch the vendor rejected whole for one invalid
 * event until only the invalid events give up (bisect.ts), and hands what it cannot finish to the
 * outbox.
 *
 * Every batch ends in exactly one final onResult outcome (delivered, failed, dropped or parked);
 * retry_scheduled is reported along the way. Results never carry a URL or an error message,
 * since either can hold a secret.
 */
import type { Dispatcher } from 'undici';
import type { BoundDestination, VendorRequest } from '../destinations/types.ts';
import { ConfigError, InternalError } from '../errors.ts';
import { createBatcher, itemsJson, keepEntries, type Batch, type BatchEntry, type Batcher, type RenderedItem } from './batcher.ts';
import { afterAttempt } from './after-attempt.ts';
import { spend, type BisectionBudget } from './bisect.ts';
import { systemClock, MAX_TIMER_MS, type Clock, type TimerHandle } from './clock.ts';
import type { Outbox, OutboxEntry, OutboxReason } from './outbox.ts';
import { createParker } from './parker.ts';
import type { DeliveryResult } from './result.ts';
import { createPauseGate } from './pause.ts';
import { decideRetry, type RetryPolicy } from './retry-policy.ts';
import { sendVendorRequest, DEFAULT_MAX_RESPONSE_BYTES } from './sender.ts';

export type { Outbox, OutboxEntry, OutboxReason } from './outbox.ts';
export { createMemoryOutbox } from './outbox.ts';

export type { DeliveryOutcomeKind, DeliveryResult } from './result.ts';

export interface DestinationDeliveryOptions {
  /** Budget for one HTTP exchange (connect, headers, body). */
  requestTimeoutMs: number;
  /** Most concurrent requests to this destination. */
  maxInFlight: number;
  /** Most events held for this destination (batching, in flight, awaiting retry). */
  maxQueuedEvents: number;
}

export const DEFAULT_DESTINATION_OPTIONS: DestinationDeliveryOptions = {
  requestTimeoutMs: 10_000,
  maxInFlight: 4,
  maxQueuedEvents: 10_000,
};

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  maxTotalMs: 10 * 60_000,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
};

export type RecheckHook = (destinationId: string, messageIds: string[]) => Promise<Set<string>> | Set<string>;

export interface DeliveryOptions {
  /** The shared undici dispatcher (createDeliveryAgent() in production, a MockAgent in tests). */
  agent: Dispatcher;
  clock?: Clock;
  /** Uniform in [0, 1), for backoff jitter. */
  random?: () => number;
  retry?: Partial<RetryPolicy>;
  /** Per-destination settings for every destination... */
  defaults?: Partial<DestinationDeliveryOptions>;
  /** ...and overrides by destination id. */
  destinations?: Record<string, Partial<DestinationDeliveryOptions>>;
  /** Most response-body bytes read per request. Default 64 KiB. */
  maxResponseBytes?: number;
  onResult: (result: DeliveryResult) => void;
  outbox: Outbox;
  /** Returns the ids still allowed to go out; called before every retry. A revocation wins. */
  recheck?: RecheckHook;
}

export interface DeliveryStats {
  queued: number;
  open: number;
  ready: number;
  inFlight: number;
  awaitingRetry: number;
}

export interface Delivery {
  /** Queues one rendered event; false (and a `failed` result with the reason) when refused. */
  enqueue(destination: BoundDestination, rendered: RenderedItem): boolean;
  /**
   * Sends everything pending now, waits for in-flight requests and for retries due within
   * `deadlineMs` (a budget from now), then parks whatever is left with reason `shutdown`.
   * Rejects (after doing all of that) when the outbox refused some entries.
   */
  flush(deadlineMs: number): Promise<void>;
  /** Refuses new events and parks everything still held at once (in-flight requests are aborted). */
  close(): Promise<void>;
  stats(): Record<string, DeliveryStats>;
}

interface Job {
  state: DestState;
  destination: BoundDestination;
  batch: Batch;
  attempts: number;
  firstAttemptAt?: number;
  abort?: AbortController;
  timer?: TimerHandle;
  dueAt?: number;
  /**
   * Set once the vendor rejected the batch whole (the template's bisectOn): the extra requests the
   * original batch may still cost, shared by every part split from it (bisect.ts).
   */
  bisection?: BisectionBudget;
}

interface DestState {
  destination: BoundDestination;
  options: DestinationDeliveryOptions;
  batcher: Batcher;
  ready: Job[];
  inFlight: Set<Job>;
  awaitingRetry: Set<Job>;
  rechecking: Set<Job>;
}

type Mode = 'open' | 'flushing' | 'parking';

export function createDelivery(options: DeliveryOptions): Delivery {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  validatePolicy(policy);
  const defaults: DestinationDeliveryOptions = { ...DEFAULT_DESTINATION_OPTIONS, ...options.defaults };
  validateDestinationOptions('defaults', defaults);
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const perDestination = new Map<string, DestinationDeliveryOptions>();
  for (const [id, override] of Object.entries(options.destinations ?? {})) {
    const merged = { ...defaults, ...override };
    validateDestinationOptions(`destinations.${id}`, merged);
    perDestination.set(id, merged);
  }

  const states = new Map<string, DestState>();
  let mode: Mode = 'open';
  let closed = false;
  let flushDeadline = Infinity;
  let idleWaiter: (() => void) | undefined;
  let draining: Promise<void> | undefined;

  // A Retry-After holds the whole destination: no request of any of its batches starts inside the
  // window. When it ends, what waited goes out in order (each batch's own backoff still applies).
  const parker = createParker({ outbox: options.outbox, report, onSettled: () => changed() });
  const gate = createPauseGate({
    clock,
    onOpen: (destinationId) => {
      const state = states.get(destinationId);
      if (!state) return;
      dispatch(state);
      changed();
    },
  });

  /** When a job may go out at the earliest: its own retry time and its destination's pause. */
  function notBefore(job: Job): number | undefined {
    const paused = gate.pausedUntil(job.state.destination.id);
    if (paused === undefined) return job.dueAt;
    return job.dueAt === undefined ? paused : Math.max(job.dueAt, paused);
  }

  function report(result: DeliveryResult): void {
    try {
      options.onResult(result);
    } catch {
      // A faulty observer must not break delivery; nothing sensible can be done with its error here.
    }
  }

  function settle(job: Job, count: number): void {
    job.state.batcher.settle(count);
  }

  function ids(job: Job): string[] {
    return job.batch.entries.map((e) => e.messageId);
  }

  function stateFor(destination: BoundDestination): DestState {
    const existing = states.get(destination.id);
    if (existing) {
      // A reloaded configuration brings a new object; new batches use the newest.
      existing.destination = destination;
      return existing;
    }
    const destOptions = perDestination.get(destination.id) ?? defaults;
    const batcher = createBatcher({
      destinationId: destination.id,
      limits: destination.limits,
      maxQueuedEvents: destOptions.maxQueuedEvents,
      retainItems: destination.needsItems,
      clock,
      // Consent is re-checked before every send, the first one included: a revocation committed
      // while the event lingered in its batch or waited for a request slot wins.
      onBatch: (batch) => recheckThenQueue({ state, destination: state.destination, batch, attempts: 0 }),
    });
    const state: DestState = {
      destination,
      options: destOptions,
      batcher,
      ready: [],
      inFlight: new Set(),
      awaitingRetry: new Set(),
      rechecking: new Set(),
    };
    states.set(destination.id, state);
    return state;
  }

  /** Moves ready jobs along: to the wire normally, to the outbox once parking. */
  function dispatch(state: DestState): void {
    if (mode === 'parking') {
      const jobs = state.ready.splice(0);
      if (jobs.length > 0) park(jobs, 'shutdown');
      return;
    }
    // Paused by a Retry-After: the jobs stay ready, in order, until the gate opens (onOpen).
    if (gate.pausedUntil(state.destination.id) !== undefined) return;
    while (state.inFlight.size < state.options.maxInFlight) {
      const job = state.ready.shift();
      if (!job) break;
      startAttempt(job);
    }
  }

  function build(job: Job): VendorRequest | undefined {
    try {
      return job.destination.buildRequest(
        job.batch.envelope,
        job.batch.entries.map((e) => e.item),
        itemsJson(job.batch),
      );
    } catch {
      // A template bug: the same batch would fail the same way on every attempt.
      report({ destinationId: job.state.destination.id, messageIds: ids(job), outcome: 'failed', attempt: job.attempts, reason: 'build_request_failed', durationMs: 0 });
      settle(job, job.batch.entries.length);
      return undefined;
    }
  }

  function startAttempt(job: Job): void {
    // Rebuilt on every attempt from the same batch, so items and idempotency keys are unchanged.
    const req = build(job);
    if (!req) return;
    job.attempts += 1;
    job.firstAttemptAt ??= clock.now();
    const abort = new AbortController();
    job.abort = abort;
    job.state.inFlight.add(job);
    track(
      sendVendorRequest(options.agent, req, {
        timeoutMs: job.state.options.requestTimeoutMs,
        signal: abort.signal,
        maxResponseBytes,
        secretValues: job.destination.secretValues,
        isTransient: (status, body) => job.destination.transientResponse(status, body),
        rejectsBatch: (status, body) => job.destination.rejectsBatch(status, body),
        now: () => clock.now(),
      }).then((sent) => {
        job.state.inFlight.delete(job);
        delete job.abort;
        const decision = decideRetry({
          attempt: job.attempts,
          firstAttemptAt: job.firstAttemptAt ?? clock.now(),
          now: clock.now(),
          method: req.method,
          idempotent: job.destination.idempotent,
          retrySafe: job.destination.retrySafe,
          outcome: sent.outcome,
          policy,
          random,
        });
        const { next, pauseMs } = afterAttempt({
          decision,
          outcome: sent.outcome,
          rejectsBatch: sent.rejectsBatch === true,
          parking: mode === 'parking',
          size: job.batch.entries.length,
          bisection: job.bisection,
          maxPauseMs: policy.maxTotalMs,
        });
        if (pauseMs !== undefined) gate.pause(job.state.destination.id, clock.now() + pauseMs);
        const base: DeliveryResult = {
          destinationId: job.state.destination.id,
          messageIds: ids(job),
          outcome: 'delivered',
          attempt: job.attempts,
          durationMs: sent.durationMs,
        };
        if (sent.outcome.kind === 'response') base.status = sent.outcome.status;
        if (sent.excerpt !== undefined && decision.action !== 'success') base.responseExcerpt = sent.excerpt;

        switch (next.action) {
          case 'deliver':
            report(base);
            settle(job, job.batch.entries.length);
            break;
          case 'park':
            if (next.retryInMs !== undefined) job.dueAt = clock.now() + next.retryInMs;
            park([job], 'shutdown', { status: base.status, durationMs: base.durationMs });
            break;
          case 'split':
            // Nothing is final for these events yet: the halves go out again.
            split(job, next.at, next.budget);
            break;
          case 'give_up':
            report({ ...base, outcome: 'failed', reason: next.reason });
            park([job], `gave_up:${next.reason}`);
            break;
          case 'retry':
            report({ ...base, outcome: 'retry_scheduled', reason: next.reason, retryInMs: next.delayMs });
            scheduleRetry(job, next.delayMs);
            break;
        }
        dispatch(job.state);
        changed();
      }),
      job,
    );
  }

  /**
   * The vendor rejected this batch (or part of one) whole for an invalid event it holds: its two
   * halves are each consent re-checked and sent like a first attempt, so that only the invalid
   * events give up (bisect.ts).
   */
  function split(job: Job, at: number, budget: BisectionBudget): void {
    spend(budget);
    const first = new Set(job.batch.entries.slice(0, at));
    const halves: ((e: BatchEntry) => boolean)[] = [(e) => first.has(e), (e) => !first.has(e)];
    for (const keep of halves) {
      // A part's attempts count from its own first request; the retry window stays the batch's.
      const part: Job = { state: job.state, destination: job.destination, batch: keepEntries(job.batch, keep), attempts: 0, bisection: budget };
      if (job.firstAttemptAt !== undefined) part.firstAttemptAt = job.firstAttemptAt;
      recheckThenQueue(part);
    }
  }

  function scheduleRetry(job: Job, delayMs: number): void {
    job.dueAt = clock.now() + delayMs;
    job.state.awaitingRetry.add(job);
    job.timer = clock.setTimeout(() => {
      delete job.timer;
      delete job.dueAt;
      job.state.awaitingRetry.delete(job);
      recheckThenQueue(job);
    }, delayMs);
  }

  function recheckThenQueue(job: Job): void {
    const hook = options.recheck;
    if (!hook) {
      job.state.ready.push(job);
      dispatch(job.state);
      changed();
      return;
    }
    job.state.rechecking.add(job);
    const destinationId = job.state.destination.id;
    track(
      Promise.resolve()
        .then(() => hook(destinationId, ids(job)))
        .then(
          (allowed) => {
            job.state.rechecking.delete(job);
            const dropped = job.batch.entries.filter((e) => !allowed.has(e.messageId));
            if (dropped.length > 0) {
              // A bisected part was sent before, inside its whole batch: resending it is a retry.
              const reason = job.attempts === 0 && job.bisection === undefined ? 'consent_revoked_before_send' : 'consent_revoked_before_retry';
              report({ destinationId, messageIds: dropped.map((e) => e.messageId), outcome: 'dropped', attempt: job.attempts, reason, durationMs: 0 });
              settle(job, dropped.length);
              job.batch = keepEntries(job.batch, (e) => allowed.has(e.messageId));
            }
            if (job.batch.entries.length > 0) {
              job.state.ready.push(job);
              dispatch(job.state);
            }
            changed();
          },
          () => {
            // Without a fresh answer we may not send (a revocation may be what we missed), and
            // we must not lose the events either: dead-letter them.
            job.state.rechecking.delete(job);
            report({ destinationId, messageIds: ids(job), outcome: 'failed', attempt: job.attempts, reason: 'recheck_failed', durationMs: 0 });
            park([job], 'gave_up:recheck_failed');
            changed();
          },
        ),
      job,
    );
  }

  /** Builds outbox entries for the jobs and parks them in one call. */
  function park(jobs: Job[], reason: OutboxReason, last?: { status?: number | undefined; durationMs: number }): void {
    const parkedAt = clock.now();
    const parked: OutboxEntry[] = [];
    for (const job of jobs) {
      if (job.timer !== undefined) {
        clock.clearTimeout(job.timer);
        delete job.timer;
      }
      const request = build(job);
      if (!request) continue;
      const entry: OutboxEntry = { destinationId: job.state.destination.id, messageIds: ids(job), request, reason, attempts: job.attempts, parkedAt };
      if (job.firstAttemptAt !== undefined) entry.firstAttemptAt = job.firstAttemptAt;
      // A restart must not shorten the vendor's Retry-After: the destination's pause holds too.
      const due = notBefore(job);
      if (due !== undefined && due > parkedAt) entry.notBefore = due;
      parked.push(entry);
    }
    // Every caller parks jobs of one destination.
    const batcher = jobs[0]?.state.batcher;
    if (batcher) parker.park(parked, reason, (count) => batcher.settle(count), last);
  }

  /**
   * Last-resort guard for a promise chain that should never reject: a bug inside it is
   * reported against the batch instead of floating away unhandled.
   */
  function track(promise: Promise<void>, job: Job): void {
    promise.catch(() => {
      job.state.inFlight.delete(job);
      job.state.rechecking.delete(job);
      report({ destinationId: job.state.destination.id, messageIds: ids(job), outcome: 'failed', attempt: job.attempts, reason: 'internal_error', durationMs: 0 });
      settle(job, job.batch.entries.length);
      changed();
    }).catch(() => {
      // report() and settle() cannot throw; this only satisfies the "no floating promise" rule.
    });
  }

  /** Re-evaluates a pending flush/close: parks what cannot make the deadline, resolves when idle. */
  function changed(): void {
    if (!idleWaiter) return;
    let busy = parker.inFlight > 0;
    for (const state of states.values()) {
      if (mode === 'flushing') {
        const late = [...state.awaitingRetry].filter((j) => (notBefore(j) ?? 0) > flushDeadline);
        for (const j of late) state.awaitingRetry.delete(j);
        // Ready jobs held by a pause that outlasts the budget cannot go out either.
        if ((gate.pausedUntil(state.destination.id) ?? 0) > flushDeadline) late.push(...state.ready.splice(0));
        if (late.length > 0) {
          park(late, 'shutdown');
          busy = true;
        }
      }
      if (state.batcher.open > 0 || state.ready.length > 0 || state.inFlight.size > 0 || state.awaitingRetry.size > 0 || state.rechecking.size > 0) {
        busy = true;
      }
    }
    if (busy || parker.inFlight > 0) return;
    const resolve = idleWaiter;
    idleWaiter = undefined;
    resolve();
  }

  function enterParking(): void {
    mode = 'parking';
    for (const state of states.values()) {
      state.batcher.flushAll(); // onBatch → dispatch → parked, since mode is parking
      const waiting = [...state.awaitingRetry];
      state.awaitingRetry.clear();
      const jobs = [...state.ready.splice(0), ...waiting];
      if (jobs.length > 0) park(jobs, 'shutdown');
      for (const job of state.inFlight) job.abort?.abort();
    }
    changed();
  }

  async function drain(budgetMs: number | undefined): Promise<void> {
    parker.takeErrors();
    const idle = new Promise<void>((resolve) => {
      idleWaiter = resolve;
    });
    let deadlineTimer: TimerHandle | undefined;
    if (budgetMs === undefined) {
      enterParking();
    } else {
      if (mode === 'open') mode = 'flushing';
      flushDeadline = clock.now() + budgetMs;
      deadlineTimer = clock.setTimeout(enterParking, Math.min(Math.max(0, budgetMs), MAX_TIMER_MS));
      for (const state of states.values()) {
        state.batcher.flushAll();
        dispatch(state);
      }
      changed();
    }
    await idle;
    if (deadlineTimer !== undefined) clock.clearTimeout(deadlineTimer);
    flushDeadline = Infinity;
    if (!closed) mode = 'open';
    const errors = parker.takeErrors();
    if (errors.length > 0) {
      throw new InternalError(`outbox refused ${errors.length} park call(s)`, { cause: errors[0], details: { count: errors.length } });
    }
  }

  function serialised(run: () => Promise<void>): Promise<void> {
    const previous = draining ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    draining = next;
    const clear = (): void => {
      if (draining === next) draining = undefined;
    };
    // Both handlers given: this derived promise cannot reject, so it does not float.
    next.then(clear, clear);
    return next;
  }

  return {
    enqueue(destination, rendered) {
      try {
        if (closed) {
          report({ destinationId: destination.id, messageIds: [rendered.messageId], outcome: 'failed', attempt: 0, reason: 'closed', durationMs: 0 });
          return false;
        }
        const state = stateFor(destination);
        const added = state.batcher.add(rendered);
        if (!added.accepted) {
          report({ destinationId: destination.id, messageIds: [rendered.messageId], outcome: 'failed', attempt: 0, reason: added.reason, durationMs: 0 });
          return false;
        }
        // While draining there is no point lingering: send (or park) at once.
        if (mode !== 'open') {
          state.batcher.flushAll();
          changed();
        }
        return true;
      } catch {
        report({ destinationId: destination.id, messageIds: [rendered.messageId], outcome: 'failed', attempt: 0, reason: 'internal_error', durationMs: 0 });
        return false;
      }
    },
    flush(deadlineMs) {
      return serialised(() => drain(deadlineMs));
    },
    close() {
      closed = true;
      return serialised(async () => {
        await drain(undefined);
        gate.clear();
        for (const state of states.values()) state.batcher.close();
      });
    },
    stats() {
      const out: Record<string, DeliveryStats> = {};
      for (const [id, state] of states) {
        out[id] = {
          queued: state.batcher.queued,
          open: state.batcher.open,
          ready: state.ready.length,
          inFlight: state.inFlight.size,
          awaitingRetry: state.awaitingRetry.size,
        };
      }
      return out;
    },
  };
}

function validatePolicy(policy: RetryPolicy): void {
  const problems: string[] = [];
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) problems.push('retry.maxAttempts must be an integer >= 1');
  // The deadline bounds every retry delay, and timers cannot wait longer than MAX_TIMER_MS.
  if (!(policy.maxTotalMs > 0 && policy.maxTotalMs <= MAX_TIMER_MS)) problems.push(`retry.maxTotalMs must be in (0, ${MAX_TIMER_MS}]`);
  if (!(policy.baseDelayMs >= 0 && Number.isFinite(policy.baseDelayMs))) problems.push('retry.baseDelayMs must be a finite number >= 0');
  if (!(policy.maxDelayMs >= 0 && Number.isFinite(policy.maxDelayMs))) problems.push('retry.maxDelayMs must be a finite number >= 0');
  if (problems.length > 0) throw new ConfigError(`invalid delivery retry policy: ${problems.join('; ')}`, { details: problems });
}

function validateDestinationOptions(path: string, o: DestinationDeliveryOptions): void {
  const problems: string[] = [];
  if (!(o.requestTimeoutMs > 0 && o.requestTimeoutMs <= MAX_TIMER_MS)) problems.push(`${path}.requestTimeoutMs must be in (0, ${MAX_TIMER_MS}]`);
  if (!Number.isInteger(o.maxInFlight) || o.maxInFlight < 1) problems.push(`${path}.maxInFlight must be an integer >= 1`);
  if (!Number.isInteger(o.maxQueuedEvents) || o.maxQueuedEvents < 1) problems.push(`${path}.maxQueuedEvents must be an integer >= 1`);
  if (problems.length > 0) throw new ConfigError(`invalid delivery options: ${problems.join('; ')}`, { details: problems });
}
