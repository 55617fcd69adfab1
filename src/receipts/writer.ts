import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { Receipt, ReceiptSink } from './receipt.ts';

export interface ReceiptWriterOptions {
  /** Writes one batch (src/store/receipts.ts insertReceipts). */
  write: (batch: readonly Receipt[]) => Promise<void>;
  /** Deletes what retention no longer keeps; run after a flush at most every `pruneEveryMs`. */
  prune: () => Promise<unknown>;
  clock: Clock;
  flushMs: number;
  pruneEveryMs: number;
  /** Receipts buffered at most; beyond, a receipt is dropped and counted (never blocks the hit). */
  maxBuffer: number;
  /** A receipt not kept: `buffer_full`, or `write_error` for each receipt of a failed batch. */
  onDrop: (reason: 'buffer_full' | 'write_error', n: number) => void;
  onError: (err: unknown) => void;
}

export interface ReceiptWriter extends ReceiptSink {
  /** Writes what is buffered now (and prunes when due). */
  flush(): Promise<void>;
  /** Stops the timer and writes what is left (shutdown). */
  close(): Promise<void>;
  readonly buffered: number;
}

/** A buffered writer off the hit's path: receipts are batched and written on a timer of the injected clock, and on close. */
export function createReceiptWriter(o: ReceiptWriterOptions): ReceiptWriter {
  let buffer: Receipt[] = [];
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
    buffer = [];
    if (batch.length > 0) {
      try {
        await o.write(batch);
      } catch (err) {
        o.onDrop('write_error', batch.length);
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
      return buffer.length;
    },
  };
}
