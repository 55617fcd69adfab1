import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import type { Clock } from '../lib/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Db } from '../store/db.ts';
import { pruneReceipts, writeReceipts } from '../store/receipts.ts';
import { createReceiptWriter, type ReceiptWriter } from './writer.ts';

/** Retention runs at most this often (after a flush). */
const PRUNE_EVERY_MS = 60_000;

/** The receipt writer config `receipts` asks for, on the store's database; undefined when off or without a store. */
export function createReceipts(config: Config, db: Db | undefined, deps: { clock: Clock; metrics: Metrics; log: Logger }): ReceiptWriter | undefined {
  const o = config.receipts;
  if (!o.enabled || db === undefined) return undefined;
  const siteId = config.site.id;
  return createReceiptWriter({
    write: (batch, deliveries) => writeReceipts(db, siteId, batch, deliveries),
    prune: () => pruneReceipts(db, deps.clock.now(), o.retentionDays, o.maxRows),
    clock: deps.clock,
    flushMs: o.flushMs,
    pruneEveryMs: PRUNE_EVERY_MS,
    maxBuffer: o.maxBuffer,
    onDrop: (reason, n) => deps.metrics.receiptsDropped.inc({ reason }, n),
    // No receipt content in the log: the error only.
    onError: (err) => deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'decision receipts not written'),
  });
}
