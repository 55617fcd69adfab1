/**
 * One destination's lane: its batcher (batching and the destination's memory bound, batcher.ts)
 * feeding its scheduler (scheduler.ts), with what the scheduler or the parker settles released
 * from that batcher's bound. Delivery holds one lane per destination id.
 */
import type { BoundDestination } from '../destinations/types.ts';
import { createBatcher, type AddResult, type RenderedItem } from './batcher.ts';
import type { Clock } from '../lib/clock.ts';
import type { DestinationDeliveryOptions } from './delivery-options.ts';
import type { Parker } from './parker.ts';
import type { DeliveryResult } from './result.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { createScheduler, type RecheckHook, type SendFn } from './scheduler.ts';

export interface DeliveryStats {
  queued: number;
  open: number;
  ready: number;
  inFlight: number;
  awaitingRetry: number;
}

export interface LaneOptions {
  destination: BoundDestination;
  settings: DestinationDeliveryOptions;
  policy: RetryPolicy;
  clock: Clock;
  random: () => number;
  send: SendFn;
  recheck: RecheckHook | undefined;
  /** Must not throw. */
  report: (result: DeliveryResult) => void;
  parker: Parker;
  parking: () => boolean;
  onChange: () => void;
}

export interface Lane {
  /** Adds one event to its batch (batcher.add); `destination`, maybe a reloaded object, serves the batches closed from now on. */
  add(destination: BoundDestination, rendered: RenderedItem): AddResult;
  /** Closes every open batch now: they go out (or are parked, when parking). */
  flushAll(): void;
  /** A flush begins: close every open batch, start what is ready. */
  startFlush(): void;
  /** Parking begins: close every open batch, park what waits, abort what is in flight. */
  startParking(): void;
  /** See Scheduler.parkLate. */
  parkLate(deadline: number): boolean;
  /** Open batches or jobs still held. */
  readonly busy: boolean;
  stats(): DeliveryStats;
  /** Events its batcher holds (what stats().queued says), without building the stats. */
  readonly queued: number;
  /** Cancels the lane's timers (linger, pause) at shutdown. */
  close(): void;
}

export function createLane(options: LaneOptions): Lane {
  const { destination, settings } = options;
  const batcher = createBatcher({
    destinationId: destination.id,
    limits: destination.limits,
    maxQueuedEvents: settings.maxQueuedEvents,
    retainItems: destination.needsItems,
    clock: options.clock,
    onBatch: (batch) => scheduler.submit(batch),
  });
  const settle = (count: number): void => batcher.settle(count);
  const scheduler = createScheduler({
    destination,
    maxInFlight: settings.maxInFlight,
    requestTimeoutMs: settings.requestTimeoutMs,
    policy: options.policy,
    clock: options.clock,
    random: options.random,
    send: options.send,
    recheck: options.recheck,
    report: options.report,
    settle,
    park: (entries, reason, last) => options.parker.park(entries, reason, settle, last),
    parking: options.parking,
    onChange: options.onChange,
  });

  return {
    add(current, rendered) {
      scheduler.setDestination(current);
      return batcher.add(rendered);
    },
    flushAll: () => batcher.flushAll(),
    startFlush() {
      batcher.flushAll();
      scheduler.dispatch();
    },
    startParking() {
      batcher.flushAll(); // onBatch → dispatch → parked, since the mode is parking
      scheduler.parkWaiting();
    },
    parkLate: (deadline) => scheduler.parkLate(deadline),
    get busy() {
      return batcher.open > 0 || scheduler.busy;
    },
    stats: () => ({ queued: batcher.queued, open: batcher.open, ...scheduler.stats() }),
    get queued() {
      return batcher.queued;
    },
    close() {
      scheduler.close();
      batcher.close();
    },
  };
}
