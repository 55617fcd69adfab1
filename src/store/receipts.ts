import type { Db, Param, Queryable } from './db.ts';
import { subjectKey } from './types.ts';
import type { DeliveryUpdate } from '../receipts/delivery.ts';
import type { Receipt } from '../receipts/receipt.ts';

/**
 * Decision receipts in the store (migration 10, docs/receipts.md): written in batches by the
 * buffered writer (src/receipts/writer.ts), read a page at a time by GET /api/v1/receipts, pruned
 * by age and by row count.
 */

/** The largest page the API returns. */
export const MAX_RECEIPT_PAGE = 1000;

interface ReceiptRow {
  seq: number | string | bigint;
  body: string;
  delivery: string | null;
  [k: string]: unknown;
}

export async function insertReceipts(db: Db, siteId: string, receipts: readonly Receipt[]): Promise<void> {
  await writeReceipts(db, siteId, receipts, []);
}

/**
 * One batch of the writer in one transaction: new receipts, then the delivery results of receipts
 * written before (set on the latest final receipt of that event × destination; a `held` one gets none).
 */
export async function writeReceipts(db: Db, siteId: string, receipts: readonly Receipt[], deliveries: readonly DeliveryUpdate[]): Promise<void> {
  if (receipts.length === 0 && deliveries.length === 0) return;
  await db.transaction(async (tx) => {
    for (const d of deliveries) {
      // The latest final receipt of the pair only: an event decided again (a replayed dead letter, a
      // resumed hit) has an older receipt whose own delivery result must stay what it was.
      await tx.run(
        "UPDATE decision_receipts SET delivery = ? WHERE seq = (SELECT MAX(seq) FROM decision_receipts WHERE site_id = ? AND message_id = ? AND destination_id = ? AND phase <> 'held')",
        [JSON.stringify(d.delivery), siteId, d.messageId, d.destinationId],
      );
    }
    for (const r of receipts) {
      await tx.run(
        'INSERT INTO decision_receipts (site_id, decided_at, message_id, destination_id, visitor_key, user_key, phase, outcome, reason, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [
          siteId,
          r.decidedAt,
          r.messageId,
          r.destinationId,
          r.visitorId === undefined ? null : subjectKey({ type: 'visitor', id: r.visitorId }),
          r.userId === undefined ? null : subjectKey({ type: 'user', id: r.userId }),
          r.phase,
          r.outcome,
          r.reason,
          JSON.stringify(r),
        ],
      );
    }
  });
}

export interface ReceiptFilters {
  siteId: string;
  visitorId?: string | undefined;
  userId?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

export interface ReceiptPage {
  receipts: (Receipt & { seq: number })[];
  /** Pass back as `cursor` for the next page; absent on the last one. */
  nextCursor?: string;
}

/** Oldest first, after `cursor` (the last seq seen). */
export async function queryReceipts(db: Queryable, f: ReceiptFilters, limit: number, cursor?: number): Promise<ReceiptPage> {
  const where: string[] = ['site_id = ?'];
  const params: Param[] = [f.siteId];
  if (f.visitorId !== undefined) {
    where.push('visitor_key = ?');
    params.push(subjectKey({ type: 'visitor', id: f.visitorId }));
  }
  if (f.userId !== undefined) {
    where.push('user_key = ?');
    params.push(subjectKey({ type: 'user', id: f.userId }));
  }
  if (f.from !== undefined) {
    where.push('decided_at >= ?');
    params.push(f.from);
  }
  if (f.to !== undefined) {
    where.push('decided_at < ?');
    params.push(f.to);
  }
  if (cursor !== undefined) {
    where.push('seq > ?');
    params.push(cursor);
  }
  const n = Math.min(Math.max(1, limit), MAX_RECEIPT_PAGE);
  const rows = await db.all<ReceiptRow>(`SELECT seq, body, delivery FROM decision_receipts WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ${String(n + 1)}`, params);
  // A result that came after the row was written is in `delivery`; one that came before is in the body.
  const page = rows.slice(0, n).map((row) => ({ seq: Number(row.seq), ...(JSON.parse(row.body) as Receipt), ...(row.delivery === null ? {} : { delivery: JSON.parse(row.delivery) as Receipt['delivery'] }) }));
  const last = page[page.length - 1];
  return rows.length > n && last !== undefined ? { receipts: page, nextCursor: String(last.seq) } : { receipts: page };
}

/** Deletes receipts older than `retentionDays` and, beyond `maxRows`, the oldest; the number deleted. */
export async function pruneReceipts(db: Queryable, now: number, retentionDays: number, maxRows: number): Promise<number> {
  let deleted = await db.run('DELETE FROM decision_receipts WHERE decided_at < ?', [now - retentionDays * 86_400_000]);
  const cut = await db.get<{ seq: number | string | bigint }>(`SELECT seq FROM decision_receipts ORDER BY seq DESC LIMIT 1 OFFSET ${String(Math.max(0, Math.floor(maxRows)))}`);
  if (cut !== undefined) deleted += await db.run('DELETE FROM decision_receipts WHERE seq <= ?', [Number(cut.seq)]);
  return deleted;
}
