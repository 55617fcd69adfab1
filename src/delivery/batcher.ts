/**
 * Per-destination batching: rendered events sharing a group key are collected into one vendor
 * request until the template's limits (count, bytes, linger time) say "send". The batcher also
 * owns the destination's memory bound: it counts every event it accepted until the delivery
 * layer reports the event settled (delivered, failed, dropped or parked), and refuses new events
 * beyond `maxQueuedEvents` instead of growing without limit.
 */
import type { BatchLimits, ItemsJson, RenderedEvent } from '../destinations/types.ts';
import { systemClock, MAX_TIMER_MS, type Clock, type TimerHandle } from '../lib/clock.ts';
import { knownJson } from './event-json.ts';
import { RenderError, UnavailableError, type ErrorClass } from '../errors.ts';

/** A successfully rendered event, the only kind that can be delivered. */
export type RenderedItem = Extract<RenderedEvent, { ok: true }>;

export interface BatchEntry {
  messageId: string;
  idempotencyKey?: string;
  /** The rendered item; undefined when the batcher keeps only its JSON (`retainItems: false`). */
  item: unknown;
  /** Where the item's JSON starts in the batch's `data`. */
  offset: number;
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
  /**
   * The items' JSON, made once to measure them and reused for the request body: UTF-8, joined by
   * commas (a JSON array's content), in `data[0, bytes)`. Kept in a Buffer rather than as one
   * string per event because a batch lingers: strings would survive young-generation GCs and be
   * copied and promoted; bytes outside the JS heap are not.
   */
  data: Buffer;
  /** Items' JSON byte lengths plus one separator between neighbours: the used part of `data`. */
  bytes: number;
  openedAt: number;
  closedBy: BatchCloseReason;
}

export type RefusalReason = 'item_too_large' | 'item_unserializable' | 'queue_full';

/**
 * The error a refused item is reported with: an item that cannot be serialised or is larger than a
 * whole batch renders the same way every time; a full queue drains.
 */
export const REFUSAL_ERRORS: Readonly<Record<RefusalReason, ErrorClass>> = {
  item_too_large: RenderError,
  item_unserializable: RenderError,
  queue_full: UnavailableError,
};

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

const COMMA = 0x2c;
/**
 * A batch's JSON buffer starts at twice its first item (at least this much) and doubles as needed
 * up to the template's maxBytes. Not a fixed 16 KiB: GA4 batches per client, so most of its batches
 * hold one event of a few hundred bytes, and a 16 KiB buffer each was a fresh allocation outside
 * Node's buffer pool for every request (and 16 KiB held per lingering batch).
 */
const MIN_DATA_BYTES = 1024;

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
    // An item that is the accepted event itself already has its text (the journal made it).
    const known = knownJson(item);
    if (known !== undefined) return { json: known, bytes: Buffer.byteLength(known, 'utf8') };
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
            data: Buffer.allocUnsafe(Math.min(maxBytes, Math.max(MIN_DATA_BYTES, 2 * bytes))),
            bytes: 0,
            openedAt: clock.now(),
          },
        };
        openBatches.set(rendered.groupKey, current);
      }
      const batch = current.batch;
      const separator = batch.entries.length > 0 ? 1 : 0;
      if (batch.bytes + separator + bytes > batch.data.length) {
        // Grow by doubling, never beyond what maxBytes lets the batch hold.
        let size = batch.data.length * 2;
        while (size < batch.bytes + separator + bytes) size *= 2;
        const grown = Buffer.allocUnsafe(Math.min(size, maxBytes));
        batch.data.copy(grown, 0, 0, batch.bytes);
        batch.data = grown;
      }
      if (separator === 1) batch.data[batch.bytes] = COMMA;
      const offset = batch.bytes + separator;
      batch.data.write(json, offset, bytes, 'utf8');
      const entry: BatchEntry = { messageId: rendered.messageId, item: retainItems ? rendered.item : undefined, offset, bytes };
      if (rendered.idempotencyKey !== undefined) entry.idempotencyKey = rendered.idempotencyKey;
      batch.bytes = offset + bytes;
      batch.entries.push(entry);
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

/** The items' JSON of a batch in the form `BoundDestination.buildRequest` takes. */
export function itemsJson(batch: Pick<Batch, 'data' | 'bytes' | 'entries'>): ItemsJson {
  return {
    count: batch.entries.length,
    joined: batch.data.subarray(0, batch.bytes),
    item: (i) => {
      const e = batch.entries[i];
      return e === undefined ? '' : batch.data.toString('utf8', e.offset, e.offset + e.bytes);
    },
  };
}

/** A copy of the batch with only the entries `keep` accepts, its `data` rebuilt to match. */
export function keepEntries<B extends Pick<Batch, 'data' | 'bytes' | 'entries'>>(batch: B, keep: (e: BatchEntry) => boolean): B {
  const entries: BatchEntry[] = [];
  let bytes = 0;
  const data = Buffer.allocUnsafe(Math.max(1, batch.bytes));
  for (const e of batch.entries) {
    if (!keep(e)) continue;
    if (entries.length > 0) data[bytes++] = COMMA;
    batch.data.copy(data, bytes, e.offset, e.offset + e.bytes);
    entries.push({ ...e, offset: bytes });
    bytes += e.bytes;
  }
  return { ...batch, entries, data, bytes };
}
