import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Queryable } from '../../store/db.ts';
import { MAX_RECEIPT_PAGE, queryReceipts, type ReceiptFilters } from '../../store/receipts.ts';
import { MAX_SUBJECT_ID, queryItemSchema } from './ids.ts';
import { queryTimeSchema } from './inputs.ts';
import { parseOr400 } from './validate.ts';

export interface ReceiptRouteOptions {
  siteId: string;
  db: Queryable;
  guard: (scope: 'audit:read') => RequestHandler;
}

// The one id rule (./ids.ts), as for item names: a NUL would reach PostgreSQL otherwise.
const queryId = queryItemSchema(MAX_SUBJECT_ID).optional();

/** The receipt filters of the query string (docs/receipts.md). Unknown parameters are refused; one subject is required. */
export const receiptQuerySchema = z
  .object({
    visitorId: queryId,
    userId: queryId,
    from: queryTimeSchema,
    to: queryTimeSchema,
    limit: z.coerce.number().int().min(1).max(MAX_RECEIPT_PAGE).optional(),
    cursor: z.string().regex(/^\d{1,18}$/).optional(),
  })
  .strict()
  .refine((q) => q.visitorId !== undefined || q.userId !== undefined, { message: 'visitorId or userId is required' });

type ReceiptQuery = z.output<typeof receiptQuerySchema>;

function filtersOf(q: ReceiptQuery, siteId: string): ReceiptFilters {
  return { siteId, visitorId: q.visitorId, userId: q.userId, from: q.from, to: q.to };
}

const ndjson = 'application/x-ndjson';

export function receiptRouter(o: ReceiptRouteOptions): Router {
  const router = Router();

  /** Streams every matching receipt, one JSON object a line, a page at a time (never all in memory). */
  async function exportNdjson(q: ReceiptQuery, res: Parameters<RequestHandler>[1]): Promise<void> {
    res.status(200).type(ndjson);
    let cursor = q.cursor === undefined ? undefined : Number(q.cursor);
    for (;;) {
      const page = await queryReceipts(o.db, filtersOf(q, o.siteId), MAX_RECEIPT_PAGE, cursor);
      for (const r of page.receipts) {
        // Respect backpressure: a slow client must not make us buffer the table.
        if (!res.write(`${JSON.stringify(r)}\n`)) await new Promise<void>((resolve) => res.once('drain', () => resolve()));
        if (res.destroyed) return;
      }
      if (page.nextCursor === undefined) break;
      cursor = Number(page.nextCursor);
    }
    res.end();
  }

  router.get('/api/v1/receipts', o.guard('audit:read'), async (req, res) => {
    const q = parseOr400(receiptQuerySchema, req.query, 'query');
    if (req.accepts(['application/json', ndjson]) === ndjson && !String(req.headers.accept ?? '').includes('application/json')) {
      await exportNdjson(q, res);
      return;
    }
    const page = await queryReceipts(o.db, filtersOf(q, o.siteId), q.limit ?? 100, q.cursor === undefined ? undefined : Number(q.cursor));
    res.json(page);
  });

  router.get('/api/v1/receipts/export', o.guard('audit:read'), async (req, res) => {
    await exportNdjson(parseOr400(receiptQuerySchema, req.query, 'query'), res);
  });

  return router;
}
