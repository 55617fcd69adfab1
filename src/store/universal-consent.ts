import { supersedes } from '../consent/last-write-wins.ts';
import { ValidationError } from '../errors.ts';
import type { Db, Param, Queryable } from './db.ts';

/**
 * Read side of SecurePrivacy's Universal Consent (seed secureprivacy-universal-consent-api.txt):
 * a consent to an object is the item `ref:<Reference>` of a subject, and what the seed keeps per
 * reference (ConsentGiven as given, ConsentType, Metadata, URI, the fingerprint) is the evidence
 * (`audit_log.attributes`) of the audit row that won that item (`consent_items.audit_seq`). So
 * nothing here needs a table of its own: the current record of a reference is its winning row,
 * Created its first audit row, LastUpdated the winning row's consent time.
 */

/** A reference's current record: the winning item and its audit row. */
export interface RefRecord {
  subjectKey: string;
  item: string;
  status: 'granted' | 'denied';
  consentAt: number;
  validUntil: number | null;
  /** The audit row that decided the item. */
  auditSeq: number;
  source: string;
  /** The evidence of that row (null for inputs that carried none, e.g. a /api/v1 push). */
  attributes: Record<string, unknown> | null;
  /** Consent time of the first audit row of this item among the subjects asked about. */
  created: number;
}

/** Remembers which subject a derived ClientId names (migration 7); the first mapping stays. */
export async function rememberClientId(db: Queryable, siteId: string, clientId: string, subjectKey: string, now: number): Promise<void> {
  await db.run('INSERT INTO client_ids (site_id, client_id, subject_key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (site_id, client_id) DO NOTHING', [siteId, clientId, subjectKey, now]);
}

/** The subject a remembered ClientId names, or undefined. */
export async function clientIdSubject(db: Queryable, siteId: string, clientId: string): Promise<string | undefined> {
  const row = await db.get<{ subject_key: string }>('SELECT subject_key FROM client_ids WHERE site_id = ? AND client_id = ?', [siteId, clientId]);
  return row?.subject_key;
}

/** The subjects sharing `subjectKey`'s profile (itself included); undefined when it is unknown. */
export async function profileMembers(db: Queryable, siteId: string, subjectKey: string): Promise<string[] | undefined> {
  const rows = await db.all<{ subject_key: string }>(
    'SELECT subject_key FROM subjects WHERE site_id = ? AND profile_id = (SELECT profile_id FROM subjects WHERE site_id = ? AND subject_key = ?) ORDER BY subject_key',
    [siteId, siteId, subjectKey],
  );
  return rows.length === 0 ? undefined : rows.map((r) => r.subject_key);
}

interface ItemRow {
  [key: string]: unknown;
  subject_key: string;
  item: string;
  status: string;
  consent_at: number;
  valid_until: number | null;
  source: string;
  audit_seq: number;
  attributes: string | null;
}

function parseAttributes(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A consent_items row joined with its audit row's evidence, as a record; `created` null: its own consent time. */
function refRecordOf(r: ItemRow, created: number | null): RefRecord {
  const consentAt = Number(r.consent_at);
  return {
    subjectKey: r.subject_key,
    item: r.item,
    status: r.status === 'granted' ? 'granted' : 'denied',
    consentAt,
    validUntil: r.valid_until === null ? null : Number(r.valid_until),
    auditSeq: Number(r.audit_seq),
    source: r.source,
    attributes: parseAttributes(r.attributes),
    created: created === null ? consentAt : Number(created),
  };
}

/**
 * The current record of `item` (`ref:<Reference>`) over `members` (a profile's subjects), by the
 * one last-write-wins rule; without `item`, the most recently decided reference of the profile.
 * Undefined when none of them holds it.
 */
export async function currentRefRecord(db: Queryable, siteId: string, members: readonly string[], item?: string): Promise<RefRecord | undefined> {
  if (members.length === 0) return undefined;
  const marks = members.map(() => '?').join(', ');
  const params: Param[] = [siteId, ...members];
  let itemSql = "AND i.item LIKE 'ref:%'";
  if (item !== undefined) {
    itemSql = 'AND i.item = ?';
    params.push(item);
  }
  const rows = await db.all<ItemRow>(
    `SELECT i.subject_key, i.item, i.status, i.consent_at, i.valid_until, i.source, i.audit_seq, a.attributes
     FROM consent_items i LEFT JOIN audit_log a ON a.seq = i.audit_seq
     WHERE i.site_id = ? AND i.subject_key IN (${marks}) ${itemSql}`,
    params,
  );
  let best: ItemRow | undefined;
  const claim = (r: ItemRow) => ({ status: r.status === 'granted' ? ('granted' as const) : ('denied' as const), at: Number(r.consent_at), validUntil: r.valid_until === null ? null : Number(r.valid_until), source: r.source });
  for (const r of rows) {
    // Per item the rule decides; across items (no item asked) the later decision, then the smaller item.
    if (best === undefined) best = r;
    else if (r.item === best.item ? supersedes(claim(r), claim(best)) : Number(r.consent_at) > Number(best.consent_at) || (Number(r.consent_at) === Number(best.consent_at) && r.item < best.item)) best = r;
  }
  if (best === undefined) return undefined;
  const first = await db.get<{ created: number | null }>(`SELECT MIN(consent_at) AS created FROM audit_log WHERE site_id = ? AND subject_key IN (${marks}) AND item = ?`, [siteId, ...members, best.item]);
  return refRecordOf(best, first?.created ?? null);
}

/** Evidence fields the query filters on (exact match); the names are the attributes' keys. */
export const EVIDENCE_FILTERS = ['CustomUserId', 'ConsentType', 'IP', 'UserAgent', 'City', 'State', 'Country'] as const;
export type EvidenceFilter = (typeof EVIDENCE_FILTERS)[number];

export interface RefQuery {
  siteId: string;
  /** Only rows of this source (the SecurePrivacy routes' own). */
  source: string;
  /** LastUpdated ≥ from (ms). */
  from: number;
  /** LastUpdated < to (ms). */
  to?: number;
  /** `ref:<Reference>`. */
  item?: string;
  /** true: granted (All or Partial, not expired at `now`); false: the others. */
  granted?: boolean;
  now: number;
  evidence?: Partial<Record<EvidenceFilter, string>>;
}

export const MAX_REF_PAGE = 1000;

function encodeCursor(at: number, seq: number): string {
  return Buffer.from(JSON.stringify({ v: 1, at, seq })).toString('base64url');
}

function decodeCursor(cursor: string): { at: number; seq: number } {
  try {
    const p = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown; at?: unknown; seq?: unknown };
    if (p.v === 1 && Number.isSafeInteger(p.at) && Number.isSafeInteger(p.seq)) return { at: p.at as number, seq: p.seq as number };
  } catch {
    // any undecodable cursor is the client's error
  }
  throw new ValidationError('Cursor: not a cursor this API returned', { details: { issues: [{ path: 'Cursor', message: 'invalid' }] } });
}

/**
 * Current records (winning rows of `ref:` items) whose last update falls in the window, oldest
 * first, one page; `nextCursor` when the page is full. Driven by the audit log's time index, each
 * row probing its item by primary key, so a page costs its own rows, not the site's.
 */
export async function queryRefRecords(db: Db, q: RefQuery, cursor: string | undefined, limit: number): Promise<{ records: RefRecord[]; nextCursor?: string }> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_REF_PAGE) {
    throw new ValidationError(`PageSize: 1 to ${MAX_REF_PAGE}`, { details: { issues: [{ path: 'PageSize', message: 'out of range' }] } });
  }
  const where = ['a.site_id = ?', "a.item LIKE 'ref:%'", 'a.source = ?', 'a.consent_at >= ?'];
  const params: Param[] = [q.siteId, q.source, q.from];
  if (q.to !== undefined) {
    where.push('a.consent_at < ?');
    params.push(q.to);
  }
  if (q.item !== undefined) {
    where.push('a.item = ?');
    params.push(q.item);
  }
  if (q.granted !== undefined) {
    where.push(q.granted ? "i.status = 'granted' AND (i.valid_until IS NULL OR i.valid_until > ?)" : "(i.status <> 'granted' OR (i.valid_until IS NOT NULL AND i.valid_until <= ?))");
    params.push(q.now);
  }
  for (const name of EVIDENCE_FILTERS) {
    const v = q.evidence?.[name];
    if (v === undefined) continue;
    // The key is one of the fixed names above, never client text; the value is a parameter.
    where.push(db.engine === 'postgres' ? `(a.attributes::jsonb ->> '${name}') = ?` : `json_extract(a.attributes, '$.${name}') = ?`);
    params.push(v);
  }
  if (cursor !== undefined) {
    const c = decodeCursor(cursor);
    where.push('(a.consent_at > ? OR (a.consent_at = ? AND a.seq > ?))');
    params.push(c.at, c.at, c.seq);
  }
  params.push(limit);
  const rows = await db.all<ItemRow & { created: number | null }>(
    `SELECT i.subject_key, i.item, i.status, i.consent_at, i.valid_until, i.source, i.audit_seq, a.attributes,
       (SELECT MIN(f.consent_at) FROM audit_log f WHERE f.site_id = a.site_id AND f.subject_key = a.subject_key AND f.item = a.item) AS created
     FROM audit_log a JOIN consent_items i ON i.site_id = a.site_id AND i.subject_key = a.subject_key AND i.item = a.item AND i.audit_seq = a.seq
     WHERE ${where.join(' AND ')}
     ORDER BY a.consent_at, a.seq LIMIT ?`,
    params,
  );
  const records = rows.map((r) => refRecordOf(r, r.created));
  const last = records[records.length - 1];
  return records.length === limit && last !== undefined ? { records, nextCursor: encodeCursor(last.consentAt, last.auditSeq) } : { records };
}
