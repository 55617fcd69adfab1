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
import type { BoundDestination } from '../destinations/types.ts';
import { ConfigError, InternalError } from '../errors.ts';
import { createBatcher, type Batcher, type RenderedItem } from './batcher.ts';
import { systemClock, MAX_TIMER_MS, type Clock, type TimerHandle } from './clock.ts';
import type { Outbox } from './outbox.ts';
import { createParker } from './parker.ts';
import type { DeliveryResult } from './result.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { createScheduler, type RecheckHook, type Scheduler, type SendFn } from './scheduler.ts';
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

export type { RecheckHook } from './scheduler.ts';

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

interface DestState {
  batcher: Batcher;
  scheduler: Scheduler;
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

  const parker = createParker({ outbox: options.outbox, report, onSettled: () => changed() });
  const send: SendFn = (req, sendOptions) => sendVendorRequest(options.agent, req, { ...sendOptions, maxResponseBytes });

  function report(result: DeliveryResult): void {
    try {
      options.onResult(result);
    } catch {
      // A faulty observer must not break delivery; nothing sensible can be done with its error here.
    }
  }

  function stateFor(destination: BoundDestination): DestState {
    const existing = states.get(destination.id);
    if (existing) {
      existing.scheduler.setDestination(destination);
      return existing;
    }
    const destOptions = perDestination.get(destination.id) ?? defaults;
    const batcher = createBatcher({
      destinationId: destination.id,
      limits: destination.limits,
      maxQueuedEvents: destOptions.maxQueuedEvents,
      retainItems: destination.needsItems,
      clock,
      onBatch: (batch) => scheduler.submit(batch),
    });
    const settle = (count: number): void => batcher.settle(count);
    const scheduler = createScheduler({
      destination,
      maxInFlight: destOptions.maxInFlight,
      requestTimeoutMs: destOptions.requestTimeoutMs,
      policy,
      clock,
      random,
      send,
      recheck: options.recheck,
      report,
      settle,
      park: (entries, reason, last) => parker.park(entries, reason, settle, last),
      parking: () => mode === 'parking',
      onChange: () => changed(),
    });
    const state: DestState = { batcher, scheduler };
    states.set(destination.id, state);
    return state;
  }

  /** Re-evaluates a pending flush/close: parks what cannot make the deadline, resolves when idle. */
  function changed(): void {
    if (!idleWaiter) return;
    let busy = parker.inFlight > 0;
    for (const state of states.values()) {
      if (mode === 'flushing' && state.scheduler.parkLate(flushDeadline)) busy = true;
      if (state.batcher.open > 0 || state.scheduler.busy) busy = true;
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
      state.scheduler.parkWaiting();
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
        state.scheduler.dispatch();
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
        for (const state of states.values()) {
          state.scheduler.close();
          state.batcher.close();
        }
      });
    },
    stats() {
      const out: Record<string, DeliveryStats> = {};
      for (const [id, state] of states) {
        out[id] = { queued: state.batcher.queued, open: state.batcher.open, ...state.scheduler.stats() };
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
