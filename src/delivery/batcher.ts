/**
 * Per-destination batching: rendered events sharing a group key are collected into one vendor
 * request until the template's limits (count, bytes, linger time) say "send". The batcher also
 * owns the destination's memory bound: it counts every event it accepted until the delivery
 * layer reports the event settled (delivered, failed, dropped or parked), and refuses new events
 * beyond `maxQueuedEvents` instead of growing without limit.
 */
import type { BatchLimits, RenderedEvent } from '../destinations/types.ts';
import { systemClock, MAX_TIMER_MS, type Clock, type TimerHandle } from './clock.ts';

/** A successfully rendered event, the only kind that can be delivered. */
export type RenderedItem = Extract<RenderedEvent, { ok: true }>;

export interface BatchEntry {
  messageId: string;
  idempotencyKey?: string;
  /** The rendered item; undefined when the batcher keeps only its JSON (`retainItems: false`). */
  item: unknown;
  /** The item's JSON, made once to measure it and reused for the request body. */
  json: string;
  /** UTF-8 byte length of the item's JSON. */
  bytes: number;
}

export type BatchCloseReason = 'max_events' | 'max_bytes' | 'linger' | 'flush';

export interface Batch {
  destinationId: string;
  groupKey: string;
  /** The envelope of the batch's first event; events with one group key share their envelope. */
  envelope: Record<string, unknown>;
  entries: BatchEntry[];
  /** Items' JSON byte lengths plus one separator between neighbours (a JSON array's content). */
  bytes: number;
  openedAt: number;
  closedBy: BatchCloseReason;
}

export type RefusalReason = 'item_too_large' | 'item_unserializable' | 'queue_full';

export type AddResult = { accepted: true } | { accepted: false; reason: RefusalReason };

export interface BatcherOptions {
  destinationId: string;
  limits: BatchLimits;
  /** Most events held for this destination at once, open batches and unsettled ones alike. */
  maxQueuedEvents: number;
  /**
   * Keep each item's object besides its JSON (BoundDestination.needsItems). Off, a batch holds one
   * string per event: far fewer live objects for the young-generation GC to copy while it lingers.
   */
  retainItems?: boolean;
  clock?: Clock;
  /** Receives every closed batch, synchronously. */
  onBatch: (batch: Batch) => void;
}

export interface Batcher {
  /** Adds one event; never throws. A refusal is final for that event: the caller reports it. */
  add(rendered: RenderedItem): AddResult;
  /** Closes every open batch now (reason `flush`), handing each to onBatch. */
  flushAll(): void;
  /** Releases `count` events from the memory bound once they reached a final outcome. */
  settle(count: number): void;
  /** Events accepted and not yet settled. */
  readonly queued: number;
  /** Events sitting in open (not yet emitted) batches. */
  readonly open: number;
  /** Cancels linger timers; open batches stay in place for a final flushAll(). */
  close(): void;
}

interface OpenBatch {
  batch: Omit<Batch, 'closedBy'>;
  timer?: TimerHandle;
}

export function createBatcher(options: BatcherOptions): Batcher {
  const clock = options.clock ?? systemClock;
  const maxEvents = Math.max(1, Math.floor(options.limits.maxEvents));
  const maxBytes = options.limits.maxBytes;
  const lingerMs = Math.min(Math.max(0, options.limits.lingerMs), MAX_TIMER_MS);
  const openBatches = new Map<string, OpenBatch>();
  const retainItems = options.retainItems ?? true;
  let queued = 0;
  let open = 0;

  function emit(groupKey: string, closedBy: BatchCloseReason): void {
    const current = openBatches.get(groupKey);
    if (!current) return;
    openBatches.delete(groupKey);
    if (current.timer !== undefined) clock.clearTimeout(current.timer);
    open -= current.batch.entries.length;
    options.onBatch({ ...current.batch, closedBy });
  }

  function measure(item: unknown): { json: string; bytes: number } | undefined {
    try {
      const json = JSON.stringify(item) as string | undefined;
      // undefined, functions and symbols have no JSON form.
      return typeof json === 'string' ? { json, bytes: Buffer.byteLength(json, 'utf8') } : undefined;
    } catch {
      // Cycles and BigInt make JSON.stringify throw.
      return undefined;
    }
  }

  return {
    add(rendered) {
      const measured = measure(rendered.item);
      if (measured === undefined) return { accepted: false, reason: 'item_unserializable' };
      const { json, bytes } = measured;
      // Splitting one event is impossible, and the vendor would refuse it: never send it.
      if (bytes > maxBytes) return { accepted: false, reason: 'item_too_large' };
      if (queued >= options.maxQueuedEvents) return { accepted: false, reason: 'queue_full' };

      const existing = openBatches.get(rendered.groupKey);
      if (existing && existing.batch.bytes + 1 + bytes > maxBytes) emit(rendered.groupKey, 'max_bytes');

      let current = openBatches.get(rendered.groupKey);
      if (!current) {
        current = {
          batch: {
            destinationId: options.destinationId,
            groupKey: rendered.groupKey,
            envelope: rendered.envelope,
            entries: [],
            bytes: 0,
            openedAt: clock.now(),
          },
        };
        openBatches.set(rendered.groupKey, current);
      }
      const entry: BatchEntry = { messageId: rendered.messageId, item: retainItems ? rendered.item : undefined, json, bytes };
      if (rendered.idempotencyKey !== undefined) entry.idempotencyKey = rendered.idempotencyKey;
      current.batch.bytes += (current.batch.entries.length > 0 ? 1 : 0) + bytes;
      current.batch.entries.push(entry);
      queued += 1;
      open += 1;

      if (current.batch.entries.length >= maxEvents) {
        emit(rendered.groupKey, 'max_events');
      } else if (lingerMs === 0) {
        emit(rendered.groupKey, 'linger');
      } else if (current.timer === undefined) {
        const groupKey = rendered.groupKey;
        current.timer = clock.setTimeout(() => emit(groupKey, 'linger'), lingerMs);
      }
      return { accepted: true };
    },
    flushAll() {
      for (const groupKey of [...openBatches.keys()]) emit(groupKey, 'flush');
    },
    settle(count) {
      queued = Math.max(0, queued - count);
    },
    get queued() {
      return queued;
    },
    get open() {
      return open;
    },
    close() {
      for (const current of openBatches.values()) {
        if (current.timer !== undefined) clock.clearTimeout(current.timer);
        delete current.timer;
      }
    },
  };
}
