import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { parseOr400 } from './validate.ts';
import type { Queryable } from '../../store/db.ts';
import { iterateAudit, MAX_AUDIT_PAGE, queryAudit, verifyAuditState, type AuditFilters, type AuditRow } from '../../store/audit.ts';
import { queryTimeSchema } from './inputs.ts';
import { idProblem, queryItemSchema, queryTextSchema } from './ids.ts';

export interface AuditRouteOptions {
  siteId: string;
  db: Queryable;
  guard: (scope: 'audit:read') => RequestHandler;
}

const queryText = (max: number) => z.string().min(1).max(max).optional();

/** The audit filters of the query string. Unknown parameters are refused: a typo must not widen an export. */
export const auditQuerySchema = z
  .object({
    subject: z
      .string()
      .max(300)
      .regex(/^(visitor|user):./, 'visitor:<id> or user:<id>')
      // The id part follows the one id rule (./ids.ts): a NUL would reach PostgreSQL otherwise.
      .superRefine((v, ctx) => {
        const problem = idProblem(v.slice(v.indexOf(':') + 1));
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `the id: ${problem}` });
      })
      .optional(),
    category: queryItemSchema(140).optional(),
    reference: queryItemSchema(520).optional(),
    source: queryTextSchema(300).optional(),
    from: queryTimeSchema,
    to: queryTimeSchema,
    valid: z.enum(['true', 'false']).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).optional(),
    cursor: queryText(512),
    format: z.enum(['ndjson', 'csv']).optional(),
  })
  .strict();

type AuditQuery = z.output<typeof auditQuerySchema>;

function parseQuery(req: Request): AuditQuery {
  return parseOr400(auditQuerySchema, req.query, 'query');
}

function filtersOf(q: AuditQuery, siteId: string): AuditFilters {
  const f: AuditFilters = { siteId };
  if (q.subject !== undefined) f.subjectKey = q.subject;
  if (q.category !== undefined) f.item = q.category;
  if (q.reference !== undefined) f.item = `ref:${q.reference}`;
  if (q.source !== undefined) f.source = q.source;
  if (q.from !== undefined) f.from = q.from;
  if (q.to !== undefined) f.to = q.to;
  if (q.valid !== undefined) f.valid = q.valid === 'true';
  return f;
}

/** A row as the API shows it: times as ISO strings; the chain fields for verification by others. */
function view(r: AuditRow): Record<string, unknown> {
  return {
    ...r,
    consentAt: r.consentAt === null ? null : new Date(r.consentAt).toISOString(),
    validUntil: r.validUntil === null ? 'unlimited' : new Date(r.validUntil).toISOString(),
    importedAt: new Date(r.importedAt).toISOString(),
  };
}

const CSV_FIELDS = ['seq', 'subjectKey', 'action', 'item', 'consentAt', 'validUntil', 'source', 'valid', 'invalidReason', 'applied', 'message', 'identification', 'identificationType', 'importedAt', 'apiKeyId', 'payloadHash', 'attributes', 'prevHash', 'hash'] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  // Quote what needs it, and neutralise spreadsheet formulas (CSV injection) in free text.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function auditRouter(o: AuditRouteOptions): Router {
  const router = Router();

  router.get('/api/v1/audit', o.guard('audit:read'), async (req, res) => {
    const q = parseQuery(req);
    const page = await queryAudit(o.db, filtersOf(q, o.siteId), q.cursor, q.limit ?? 100);
    res.json({ entries: page.rows.map(view), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) });
  });

  // Streamed export: NDJSON (default) or CSV, a page at a time, never the whole log in memory.
  router.get('/api/v1/audit/export', o.guard('audit:read'), async (req, res) => {
    const q = parseQuery(req);
    const filters = filtersOf(q, o.siteId);
    const format = q.format ?? 'ndjson';
    res.status(200).type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    if (format === 'csv') res.write(`${CSV_FIELDS.join(',')}\n`);
    for await (const row of iterateAudit(o.db, filters)) {
      const v = view(row);
      const line = format === 'csv' ? `${CSV_FIELDS.map((k) => csvCell(v[k])).join(',')}\n` : `${JSON.stringify(v)}\n`;
      // Respect backpressure: a slow client must not make us buffer the log.
      if (!res.write(line)) await new Promise<void>((resolve) => res.once('drain', () => resolve()));
      if (res.destroyed) return;
    }
    res.end();
  });

  router.get('/api/v1/audit/verify', o.guard('audit:read'), async (_req, res) => {
    // The chain and the state it implies (src/store/replay.ts): a direct edit of either fails.
    const verdict = await verifyAuditState(o.db);
    // The chain spans every site of the database: another site's subjects are not this key's to see.
    if (!verdict.ok && verdict.reason === 'state_mismatch' && verdict.mismatch.siteId !== o.siteId) {
      res.json({ ok: false, reason: 'state_mismatch', rows: verdict.rows, mismatch: { siteId: verdict.mismatch.siteId } });
      return;
    }
    res.json(verdict);
  });

  return router;
}
