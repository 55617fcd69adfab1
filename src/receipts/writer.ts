import type { DeliveryResult } from '../delivery/result.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { deliveryOf, type DeliveryUpdate } from './delivery.ts';
import type { Receipt, ReceiptSink } from './receipt.ts';

export interface ReceiptWriterOptions {
  /** Writes one batch, and the delivery results of receipts written before (src/store/receipts.ts writeReceipts). */
  write: (batch: readonly Receipt[], deliveries: readonly DeliveryUpdate[]) => Promise<void>;
  /** Deletes what retention no longer keeps; run after a flush at most every `pruneEveryMs`. */
  prune: () => Promise<unknown>;
  clock: Clock;
  flushMs: number;
  pruneEveryMs: number;
  /** Receipts buffered at most, and as many delivery results; beyond, one is dropped and counted (never blocks the hit). */
  maxBuffer: number;
  /** A receipt not kept: `buffer_full`, or `write_error` for each receipt of a failed batch. */
  onDrop: (reason: 'buffer_full' | 'write_error', n: number) => void;
  onError: (err: unknown) => void;
}

export interface ReceiptWriter extends ReceiptSink {
  /** A delivery result: set on the buffered receipts of its events, else written as an update with the next batch. */
  delivered(result: DeliveryResult): void;
  /** Writes what is buffered now (and prunes when due). */
  flush(): Promise<void>;
  /** Stops the timer and writes what is left (shutdown). */
  close(): Promise<void>;
  readonly buffered: number;
}

/**
 * A buffered writer off the hit's path: receipts are batched and written on a timer of the injected
 * clock, and on close. A delivery result that arrives while its receipt is still buffered (the
 * common case: a vendor answers within `flushMs`) is set on it in memory, at no extra write; a
 * later one becomes an update in the next batch (the last result per receipt wins).
 */
export function createReceiptWriter(o: ReceiptWriterOptions): ReceiptWriter {
  let buffer: Receipt[] = [];
  /** The buffered final receipts that send something, by destination and messageId: where a delivery result lands. */
  let sending = new Map<string, Receipt>();
  let updates = new Map<string, DeliveryUpdate>();
  let timer: TimerHandle | undefined;
  let closed = false;
  let lastPrune = Number.NEGATIVE_INFINITY;
  let chain: Promise<void> = Promise.resolve();

  function schedule(): void {
    if (closed || timer !== undefined) return;
    timer = o.clock.setTimeout(() => {
      timer = undefined;
      void flush();
    }, o.flushMs);
  }

  async function writeNow(): Promise<void> {
    const batch = buffer;
    const deliveries = [...updates.values()];
    buffer = [];
    sending = new Map();
    updates = new Map();
    if (batch.length > 0 || deliveries.length > 0) {
      try {
        await o.write(batch, deliveries);
      } catch (err) {
        o.onDrop('write_error', batch.length + deliveries.length);
        o.onError(err);
      }
    }
    const now = o.clock.now();
    if (now - lastPrune >= o.pruneEveryMs) {
      lastPrune = now;
      try {
        await o.prune();
      } catch (err) {
        o.onError(err);
      }
    }
  }

  function flush(): Promise<void> {
    // One flush at a time: batches are written in order.
    chain = chain.then(writeNow);
    return chain;
  }

  return {
    record(receipt) {
      if (closed) return;
      if (buffer.length >= o.maxBuffer) {
        o.onDrop('buffer_full', 1);
        return;
      }
      buffer.push(receipt);
      if (receipt.phase !== 'held' && (receipt.outcome === 'forward' || receipt.outcome === 'redact')) sending.set(keyOf(receipt.destinationId, receipt.messageId), receipt);
      schedule();
    },
    delivered(result) {
      if (closed) return;
      const delivery = deliveryOf(result, o.clock.now());
      for (const messageId of result.messageIds) {
        const key = keyOf(result.destinationId, messageId);
        const buffered = sending.get(key);
        if (buffered !== undefined) {
          buffered.delivery = delivery;
          continue;
        }
        if (!updates.has(key) && updates.size >= o.maxBuffer) {
          o.onDrop('buffer_full', 1);
          continue;
        }
        updates.set(key, { messageId, destinationId: result.destinationId, delivery });
      }
      schedule();
    },
    flush,
    async close() {
      closed = true;
      if (timer !== undefined) o.clock.clearTimeout(timer);
      timer = undefined;
      await flush();
    },
    get buffered() {
      return buffer.length + updates.size;
    },
  };
}

function keyOf(destinationId: string, messageId: string): string {
  return `${destinationId}\u0000${messageId}`;
}
