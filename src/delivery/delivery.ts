/**
 * Delivery: batches rendered events per destination, sends them with a bounded number of
 * requests in flight per destination, retries by the pure retry policy on timers (never by
 * blocking), re-checks consent before every send, holds every request of a destination while a
 * vendor's Retry-After runs, splits a batch the vendor rejected whole for one invalid event until
 * only the invalid events give up, and hands what it cannot finish to the outbox.
 *
 * This file only composes the parts: per destination a lane (destination-lane.ts), a batcher
 * (batcher.ts) feeding a scheduler (scheduler.ts: queue, in-flight cap, retries, pause, re-check;
 * after-attempt.ts says what follows an attempt); one parker for the outbox (parker.ts); and the
 * flush/close lifecycle (lifecycle.ts). Settings and their validation: delivery-options.ts.
 *
 * Every batch ends in exactly one final onResult outcome (delivered, failed, dropped or parked);
 * retry_scheduled is reported along the way. Results never carry a URL or an error message,
 * since either can hold a secret; a failure carries its error code (result.ts).
 */
import type { Dispatcher } from 'undici';
import type { BoundDestination } from '../destinations/types.ts';
import { REFUSAL_ERRORS, type RefusalReason, type RenderedItem } from './batcher.ts';
import { errorCodeOf, InternalError, UnavailableError, type ErrorCode } from '../errors.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import { resolveDeliverySettings, type DestinationDeliveryOptions } from './delivery-options.ts';
import { createLane, type DeliveryStats, type Lane } from './destination-lane.ts';
import { createLifecycle } from './lifecycle.ts';
import type { Outbox } from './outbox.ts';
import { createParker } from './parker.ts';
import type { DeliveryResult } from './result.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { RecheckHook, SendFn } from './scheduler.ts';
import { send as sendOutbound, DEFAULT_MAX_RESPONSE_BYTES } from '../lib/http/send.ts';
import { createTokenSource, withAuth } from './oauth2.ts';

export type { Outbox, OutboxEntry, OutboxReason } from './outbox.ts';
export { createMemoryOutbox } from './outbox.ts';
export type { DeliveryOutcomeKind, DeliveryResult } from './result.ts';
export type { RecheckHook } from './scheduler.ts';
export type { DeliveryStats } from './destination-lane.ts';
export { DEFAULT_DESTINATION_OPTIONS, DEFAULT_RETRY_POLICY, type DestinationDeliveryOptions } from './delivery-options.ts';

export interface DeliveryOptions {
  /** The shared undici dispatcher (the 'vendors' pool of src/lib/http/pool.ts in production, a MockAgent in tests). */
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
  /** Returns the ids still allowed to go out; called before every send. A revocation wins. */
  recheck?: RecheckHook;
}

/**
 * Why enqueue refused an event: the batcher's reasons (batcher.ts: `queue_full` drains, while
 * `item_too_large` and `item_unserializable` render the same way every time), `closed` after
 * close(), `internal_error` for a fault. Only `queue_full` is worth trying again later.
 */
export type EnqueueRefusal = RefusalReason | 'closed' | 'internal_error';
// A record, so that a new refusal reason must be listed here too (the type checker says so).
const REFUSALS: Readonly<Record<EnqueueRefusal, true>> = { queue_full: true, item_too_large: true, item_unserializable: true, closed: true, internal_error: true };
/** Every EnqueueRefusal: the reasons of the `failed` results enqueue reports when it refuses. */
export const ENQUEUE_REFUSALS: ReadonlySet<string> = new Set(Object.keys(REFUSALS));
/** What enqueue did with one event: `queued`, or the reason it was refused. */
export type EnqueueResult = 'queued' | EnqueueRefusal;

export interface Delivery {
  /** Queues one rendered event: `queued`, or the refusal's reason (and a `failed` result with it). */
  enqueue(destination: BoundDestination, rendered: RenderedItem): EnqueueResult;
  /**
   * Sends everything pending now, waits for in-flight requests and for retries due within
   * `deadlineMs` (a budget from now), then parks whatever is left with reason `shutdown`.
   * Rejects (after doing all of that) when the outbox refused some entries.
   */
  flush(deadlineMs: number): Promise<void>;
  /** Refuses new events and parks everything still held at once (in-flight requests are aborted). */
  close(): Promise<void>;
  stats(): Record<string, DeliveryStats>;
  /** `stats()[destinationId].queued` alone (0 for a destination not seen yet): asked once per hit, so it builds nothing. */
  queued(destinationId: string): number;
}

export function createDelivery(options: DeliveryOptions): Delivery {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const settings = resolveDeliverySettings(options);
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  // A destination whose 2xx bodies list failed rows (rowErrors) reads more of them than an error page.
  const raw: SendFn = (req, sendOptions) => sendOutbound(options.agent, req, { ...sendOptions, maxResponseBytes: sendOptions.maxResponseBytes ?? maxResponseBytes });
  // The one auth hook: a template's `auth` (docs/templates.md) is applied here, just before the
  // wire, so every attempt, retry and bisected part of a batch goes through it.
  const tokens = createTokenSource({ clock, exchange: (req, exchangeOptions) => sendOutbound(options.agent, req, exchangeOptions) });
  const send = withAuth(raw, tokens);
  const lanes = new Map<string, Lane>();
  const each = (run: (lane: Lane) => void): void => lanes.forEach(run);

  const parker = createParker({ outbox: options.outbox, report, onSettled: () => lifecycle.changed() });
  const lifecycle = createLifecycle({
    clock,
    startFlush: () => each((lane) => lane.startFlush()),
    startParking: () => each((lane) => lane.startParking()),
    // Every lane is asked (map, not some): each parks its own late jobs.
    parkLate: (deadline) => [...lanes.values()].map((lane) => lane.parkLate(deadline)).includes(true),
    busy: () => parker.inFlight > 0 || [...lanes.values()].some((lane) => lane.busy),
    takeParkErrors: () => parker.takeErrors(),
  });

  function report(result: DeliveryResult): void {
    try {
      options.onResult(result);
    } catch {
      // A faulty observer must not break delivery; nothing sensible can be done with its error here.
    }
  }

  function laneFor(destination: BoundDestination): Lane {
    let lane = lanes.get(destination.id);
    if (!lane) {
      lane = createLane({
        destination,
        settings: settings.forDestination(destination.id),
        policy: settings.policy,
        clock,
        random,
        send,
        recheck: options.recheck,
        report,
        parker,
        parking: () => lifecycle.mode === 'parking',
        onChange: () => lifecycle.changed(),
      });
      lanes.set(destination.id, lane);
    }
    return lane;
  }

  return {
    enqueue(destination, rendered) {
      const refuse = (reason: EnqueueRefusal, error: ErrorCode): EnqueueRefusal => {
        report({ destinationId: destination.id, messageIds: [rendered.messageId], outcome: 'failed', attempt: 0, reason, error, durationMs: 0 });
        return reason;
      };
      try {
        if (lifecycle.closed) return refuse('closed', errorCodeOf(UnavailableError));
        const lane = laneFor(destination);
        const added = lane.add(destination, rendered);
        if (!added.accepted) return refuse(added.reason, errorCodeOf(REFUSAL_ERRORS[added.reason]));
        // While draining there is no point lingering: send (or park) at once.
        if (lifecycle.mode !== 'open') {
          lane.flushAll();
          lifecycle.changed();
        }
        return 'queued';
      } catch {
        return refuse('internal_error', errorCodeOf(InternalError));
      }
    },
    flush: (deadlineMs) => lifecycle.flush(deadlineMs),
    close: () => lifecycle.close(() => each((lane) => lane.close())),
    stats: () => Object.fromEntries([...lanes].map(([id, lane]) => [id, lane.stats()])),
    queued: (destinationId) => lanes.get(destinationId)?.queued ?? 0,
  };
}
