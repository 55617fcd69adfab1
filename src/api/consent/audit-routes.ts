import { Router, type Request, type RequestHandler } from 'express';
import { ValidationError } from '../../errors.ts';
import type { Queryable } from '../../store/db.ts';
import { iterateAudit, MAX_AUDIT_PAGE, queryAudit, verifyAuditChain, type AuditFilters, type AuditRow } from '../../store/audit.ts';
import { parseTime } from './inputs.ts';

export interface AuditRouteOptions {
  siteId: string;
  db: Queryable;
  guard: (scope: 'audit:read') => RequestHandler;
}

/** Audit filters from the query string: subject (visitor:<id> | user:<id>), category, source, from, to, valid. */
function filtersOf(req: Request, siteId: string): AuditFilters {
  const q = req.query;
  const issues: { path: string; message: string }[] = [];
  const f: AuditFilters = { siteId };
  const str = (name: string, max = 300): string | undefined => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '' || v.length > max) {
      issues.push({ path: name, message: `a string of 1-${max} characters` });
      return undefined;
    }
    return v;
  };
  const subject = str('subject');
  if (subject !== undefined) {
    if (!/^(visitor|user):./.test(subject)) issues.push({ path: 'subject', message: 'visitor:<id> or user:<id>' });
    else f.subjectKey = subject;
  }
  const category = str('category', 140);
  if (category !== undefined) f.item = category;
  const reference = str('reference', 520);
  if (reference !== undefined) f.item = `ref:${reference}`;
  const source = str('source');
  if (source !== undefined) f.source = source;
  for (const name of ['from', 'to'] as const) {
    const v = str(name, 64);
    if (v === undefined) continue;
    const t = parseTime(v);
    if (t === undefined) issues.push({ path: name, message: 'unix seconds, milliseconds or ISO 8601' });
    else f[name] = t;
  }
  const valid = str('valid', 5);
  if (valid !== undefined) {
    if (valid !== 'true' && valid !== 'false') issues.push({ path: 'valid', message: 'true or false' });
    else f.valid = valid === 'true';
  }
  if (issues.length > 0) throw new ValidationError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), { details: { issues } });
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

const CSV_FIELDS = ['seq', 'subjectKey', 'action', 'item', 'consentAt', 'validUntil', 'source', 'valid', 'invalidReason', 'applied', 'message', 'identification', 'identificationType', 'importedAt', 'apiKeyId', 'payloadHash', 'prevHash', 'hash'] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  // Quote what needs it, and neutralise spreadsheet formulas (CSV injection) in free text.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function auditRouter(o: AuditRouteOptions): Router {
  const router = Router();

  router.get('/api/v1/audit', o.guard('audit:read'), async (req, res) => {
    const filters = filtersOf(req, o.siteId);
    const limitRaw = req.query.limit;
    const limit = limitRaw === undefined ? 100 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) throw new ValidationError(`limit: 1-${MAX_AUDIT_PAGE}`, { details: { issues: [{ path: 'limit', message: `1-${MAX_AUDIT_PAGE}` }] } });
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const page = await queryAudit(o.db, filters, cursor, limit);
    res.json({ entries: page.rows.map(view), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) });
  });

  // Streamed export: NDJSON (default) or CSV, a page at a time, never the whole log in memory.
  router.get('/api/v1/audit/export', o.guard('audit:read'), async (req, res) => {
    const filters = filtersOf(req, o.siteId);
    const format = req.query.format ?? 'ndjson';
    if (format !== 'ndjson' && format !== 'csv') throw new ValidationError('format: ndjson or csv', { details: { issues: [{ path: 'format', message: 'ndjson or csv' }] } });
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
    res.json(await verifyAuditChain(o.db));
  });

  return router;
}
