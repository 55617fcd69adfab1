import { createHash } from 'node:crypto';
import { powerOfTwoParts } from './parts.ts';
import { InternalError, ValidationError } from '../errors.ts';
import type { Db, Param, Queryable } from './db.ts';
import { AuditReplay, type ReplayProblem } from './replay.ts';

/**
 * The audit log: every consent input, append-only, in ONE hash chain across sites:
 * `hash = SHA-256(prev_hash || canonical JSON of the row's columns)`, the first row's prev_hash
 * being 64 zeros. `seq` is not hashed: PostgreSQL assigns it (an identity column) and burns values
 * on rolled-back and conflicting inserts, so gaps in seq are normal; the chain itself is what
 * orders the rows (prev_hash links each to the one before).
 *
 * What verification detects: an edited row (its hash no longer matches its columns), a deleted or
 * inserted row anywhere but at the end, and reordered rows (a prev_hash that no longer links).
 * What it cannot detect from the table alone: removing rows from the END (the shorter chain is
 * still valid), or rewriting a row together with every hash after it. Both are caught by keeping
 * the head (`auditHead`) outside the database now and then (a log line, a ticket, a signed
 * timestamp) and passing it to `verifyAuditChain` as an anchor.
 */

export const GENESIS_HASH = '0'.repeat(64);

/**
 * PostgreSQL advisory lock key held (per transaction) by every writer of the chain: appends from
 * several instances are serialised, so each reads the head the previous one committed and seq
 * order equals chain order. (7240001 is the migrations' lock.)
 */
export const AUDIT_CHAIN_LOCK = 7240002;

/** The hashed columns of an audit row, as stored. */
export interface AuditColumns {
  site_id: string;
  subject_key: string;
  action: string;
  item: string | null;
  consent_at: number | null;
  valid_until: number | null;
  message: string | null;
  source: string;
  identification: string | null;
  identification_type: string | null;
  imported_at: number;
  api_key_id: string | null;
  payload_hash: string;
  valid: 0 | 1;
  invalid_reason: string | null;
  applied: 0 | 1;
  dedup_key: string;
  /**
   * Evidence kept beside the state (migration 5): canonical JSON of an object, or null. Hashed only
   * when not null, so every row written before the column existed keeps its hash.
   */
  attributes?: string | null;
}

const HASHED: readonly (keyof AuditColumns)[] = [
  'action',
  'api_key_id',
  'applied',
  'consent_at',
  'dedup_key',
  'identification',
  'identification_type',
  'imported_at',
  'invalid_reason',
  'item',
  'message',
  'payload_hash',
  'site_id',
  'source',
  'subject_key',
  'valid',
  'valid_until',
];

/** A row of the audit log as the API returns it. */
export interface AuditRow {
  seq: number;
  siteId: string;
  subjectKey: string;
  action: string;
  item: string | null;
  consentAt: number | null;
  validUntil: number | null;
  message: string | null;
  source: string;
  identification: string | null;
  identificationType: string | null;
  importedAt: number;
  apiKeyId: string | null;
  payloadHash: string;
  valid: boolean;
  invalidReason: string | null;
  applied: boolean;
  dedupKey: string;
  /** The evidence kept with the input (Bloomreach attributes, SecurePrivacy fingerprint, …), or null. */
  attributes: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

/**
 * Canonical JSON of the hashed columns: keys in a fixed (sorted) order, integers as JSON numbers,
 * absent values as null. Both engines read the columns back as the same JS values (BIGINT parsed
 * to numbers, see postgres.ts), so the hash recomputes identically on either.
 */
export function canonicalAuditJson(row: AuditColumns): string {
  const out: Record<string, unknown> = {};
  for (const k of HASHED) out[k] = row[k] ?? null;
  // Appended after the sorted columns, and only when present: a row without evidence hashes
  // exactly as it did before migration 5 added the column.
  if (row.attributes !== undefined && row.attributes !== null) out.attributes = row.attributes;
  return JSON.stringify(out);
}

/** Most bytes of one row's attributes JSON (a seed's evidence is small; 16 KiB bounds a hostile one). */
export const MAX_AUDIT_ATTRIBUTES_BYTES = 16_384;

/**
 * The stored text of an input's evidence: JSON with object keys sorted at every level, text made
 * storable (storableText). Undefined for no evidence or an empty object. Callers bound what they
 * pass; a result beyond MAX_AUDIT_ATTRIBUTES_BYTES is a ValidationError (400), never truncated.
 */
export function auditAttributesJson(attrs: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (attrs === undefined || Object.keys(attrs).length === 0) return undefined;
  const sort = (v: unknown): unknown => {
    if (typeof v === 'string') return storableText(v);
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      // Null prototype: a `__proto__` key (JSON.parse makes it an own key) is kept as evidence,
      // not turned into a prototype assignment that would silently drop it.
      const out = Object.create(null) as Record<string, unknown>;
      for (const k of Object.keys(v).sort()) out[storableText(k)] = sort((v as Record<string, unknown>)[k]);
      return out;
    }
    return v;
  };
  const text = JSON.stringify(sort(attrs));
  if (Buffer.byteLength(text) > MAX_AUDIT_ATTRIBUTES_BYTES) {
    throw new ValidationError(`attributes: at most ${MAX_AUDIT_ATTRIBUTES_BYTES} bytes of evidence per input`, { details: { issues: [{ path: 'attributes', message: 'too large' }] } });
  }
  return text;
}

export function auditHash(prevHash: string, row: AuditColumns): string {
  return createHash('sha256').update(prevHash).update(canonicalAuditJson(row)).digest('hex');
}

/**
 * Text as it will read back from either engine: PostgreSQL text cannot hold NUL, and lone UTF-16
 * surrogates do not survive UTF-8; the hash must cover what is stored, or the row would fail
 * verification. The raw payload stays provable through payload_hash.
 */
export function storableText(s: string): string {
  // eslint-disable-next-line no-control-regex -- NUL is exactly what has to go
  return s.toWellFormed().replace(/\u0000/g, '\uFFFD');
}

/** Serialises chain writers (PostgreSQL); SQLite transactions are already one writer at a time. */
export async function lockAuditChain(tx: Queryable, engine: Db['engine']): Promise<void> {
  if (engine === 'postgres') await tx.run(`SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);
}

/** The last row's hash (GENESIS_HASH for an empty log). Call under `lockAuditChain`. */
export async function chainHeadHash(tx: Queryable): Promise<string> {
  const row = await tx.get<{ hash: string }>('SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  return row?.hash ?? GENESIS_HASH;
}

/**
 * Appends one row after `prevHash` (the head, under the lock). Undefined when a row with the same
 * dedup_key exists: nothing is written and the head is unchanged.
 */
export async function appendAudit(tx: Queryable, prevHash: string, row: AuditColumns): Promise<{ seq: number; hash: string } | undefined> {
  const hash = auditHash(prevHash, row);
  const cols = [...HASHED, 'attributes', 'prev_hash', 'hash'];
  const params: Param[] = [...HASHED.map((k) => row[k] ?? null), row.attributes ?? null, prevHash, hash];
  const inserted = await tx.get<{ seq: number }>(
    `INSERT INTO audit_log (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ON CONFLICT (dedup_key) DO NOTHING RETURNING seq`,
    params,
  );
  return inserted === undefined ? undefined : { seq: Number(inserted.seq), hash };
}

/** Rows per multi-row INSERT of appendAuditRows: 20 columns each, far under both engines' parameter limits. */
const AUDIT_ROWS_PER_INSERT = 128;

/**
 * Appends rows that follow each other in the chain (the first after `prevHash`, the head, under
 * the lock; none a duplicate: the caller has looked their dedup keys up under the lock) in a few
 * multi-row INSERTs, and returns each row's seq and hash in order. One INSERT per row was most of
 * an import's round trips. The statements insert in VALUES order, so the seqs drawn are
 * increasing in chain order (the journal relies on the same, src/store/journal.ts); RETURNING's
 * own row order is not promised, so they are sorted. A row that conflicts after all (which the
 * lock rules out) would leave fewer seqs than rows: the call throws and the transaction rolls back.
 */
export async function appendAuditRows(tx: Queryable, engine: Db['engine'], prevHash: string, rows: readonly AuditColumns[]): Promise<{ seq: number; hash: string }[]> {
  const cols = [...HASHED, 'attributes', 'prev_hash', 'hash'];
  const tuple = `(${cols.map(() => '?').join(', ')})`;
  const out: { seq: number; hash: string }[] = [];
  let prev = prevHash;
  // Power-of-two sizes: a handful of statement texts, so SQLite's prepared statements are reused.
  for (const part of powerOfTwoParts(rows, AUDIT_ROWS_PER_INSERT)) {
    const n = part.length;
    const params: Param[] = [];
    const hashes: string[] = [];
    for (const row of part) {
      const hash = auditHash(prev, row);
      for (const k of HASHED) params.push(row[k] ?? null);
      params.push(row.attributes ?? null, prev, hash);
      hashes.push(hash);
      prev = hash;
    }
    const insert = `INSERT INTO audit_log (${cols.join(', ')}) VALUES ${new Array<string>(n).fill(tuple).join(', ')} ON CONFLICT (dedup_key) DO NOTHING`;
    const seqs = engine === 'sqlite' ? await sqliteAppendedSeqs(tx, insert, params, n) : (await tx.all<{ seq: number }>(`${insert} RETURNING seq`, params)).map((r) => Number(r.seq)).sort((a, b) => a - b);
    if (seqs.length !== n) throw new InternalError(`audit: ${n - seqs.length} of ${n} rows appended in one statement collided with an existing dedup key`);
    for (let j = 0; j < n; j++) out.push({ seq: seqs[j]!, hash: hashes[j]! });
  }
  return out;
}

/**
 * SQLite: the seqs of the rows one multi-row INSERT just added, without RETURNING (an object per
 * row in node:sqlite), as the journal does (src/store/journal.ts): seq is AUTOINCREMENT, drawn in
 * VALUES order under the write lock, so the rows changed are the ones ending at
 * last_insert_rowid(); the count in that range proves there are no others.
 */
async function sqliteAppendedSeqs(tx: Queryable, insert: string, params: readonly Param[], n: number): Promise<number[]> {
  const changed = await tx.run(insert, params);
  if (changed !== n) return [];
  const range = await tx.get<{ last: number | bigint; n: number | bigint }>('SELECT last_insert_rowid() AS last, (SELECT COUNT(*) FROM audit_log WHERE seq BETWEEN last_insert_rowid() - ? AND last_insert_rowid()) AS n', [n - 1]);
  const last = Number(range?.last ?? 0);
  if (Number(range?.n ?? 0) !== n) throw new InternalError(`audit: the ${n} rows appended did not get consecutive seqs ending at ${last}`);
  return Array.from({ length: n }, (_, i) => last - n + 1 + i);
}

/** The newest row's seq and hash: keep it outside the database to detect truncation later. */
export interface AuditAnchor {
  seq: number;
  hash: string;
}

export async function auditHead(db: Queryable): Promise<AuditAnchor | undefined> {
  const row = await db.get<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  return row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash };
}

export interface AuditFilters {
  siteId: string;
  subjectKey?: string;
  item?: string;
  source?: string;
  /** consent_at ≥ from (ms). */
  from?: number;
  /** consent_at < to (ms). */
  to?: number;
  valid?: boolean;
}

export const MAX_AUDIT_PAGE = 1000;
const DEFAULT_AUDIT_PAGE = 100;

const COLUMNS =
  'seq, site_id, subject_key, action, item, consent_at, valid_until, message, source, identification, identification_type, imported_at, api_key_id, payload_hash, valid, invalid_reason, applied, dedup_key, attributes, prev_hash, hash';

interface DbAuditRow extends AuditColumns {
  [key: string]: unknown;
  seq: number;
  prev_hash: string;
  hash: string;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** A row as read, normalised to the JS values it was hashed from. */
function columnsOf(r: DbAuditRow): AuditColumns {
  return {
    site_id: r.site_id,
    subject_key: r.subject_key,
    action: r.action,
    item: r.item,
    consent_at: num(r.consent_at),
    valid_until: num(r.valid_until),
    message: r.message,
    source: r.source,
    identification: r.identification,
    identification_type: r.identification_type,
    imported_at: Number(r.imported_at),
    api_key_id: r.api_key_id,
    payload_hash: r.payload_hash,
    valid: Number(r.valid) === 1 ? 1 : 0,
    invalid_reason: r.invalid_reason,
    applied: Number(r.applied) === 1 ? 1 : 0,
    dedup_key: r.dedup_key,
    attributes: r.attributes ?? null,
  };
}

function toAuditRow(r: DbAuditRow): AuditRow {
  const c = columnsOf(r);
  return {
    seq: Number(r.seq),
    siteId: c.site_id,
    subjectKey: c.subject_key,
    action: c.action,
    item: c.item,
    consentAt: c.consent_at,
    validUntil: c.valid_until,
    message: c.message,
    source: c.source,
    identification: c.identification,
    identificationType: c.identification_type,
    importedAt: c.imported_at,
    apiKeyId: c.api_key_id,
    payloadHash: c.payload_hash,
    valid: c.valid === 1,
    invalidReason: c.invalid_reason,
    applied: c.applied === 1,
    dedupKey: c.dedup_key,
    attributes: c.attributes === null || c.attributes === undefined ? null : (JSON.parse(c.attributes) as Record<string, unknown>),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** Opaque to clients: the last seq of the page, so the next page is a keyset (seq > n) query. */
function encodeCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ v: 1, seq })).toString('base64url');
}

function decodeCursor(cursor: string): number {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (parsed !== null && typeof parsed === 'object' && (parsed as { v?: unknown }).v === 1) {
      const seq = (parsed as { seq?: unknown }).seq;
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return seq;
    }
  } catch {
    // fall through: any undecodable cursor is the client's error
  }
  throw new ValidationError('cursor: not a cursor this API returned', { details: { issues: [{ path: 'cursor', message: 'invalid' }] } });
}

/**
 * One page of the audit log of a site, oldest first, filtered. `nextCursor` is set when the page
 * is full (there may be more); pass it back for the next page. Keyset pagination: pages stay
 * consistent while rows are appended.
 */
export async function queryAudit(db: Queryable, filters: AuditFilters, cursor?: string, limit: number = DEFAULT_AUDIT_PAGE): Promise<{ rows: AuditRow[]; nextCursor?: string }> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) {
    throw new ValidationError(`limit: 1 to ${MAX_AUDIT_PAGE}`, { details: { issues: [{ path: 'limit', message: 'out of range' }] } });
  }
  const where = ['site_id = ?', 'seq > ?'];
  const params: Param[] = [filters.siteId, cursor === undefined ? 0 : decodeCursor(cursor)];
  const add = (sql: string, value: Param): void => {
    where.push(sql);
    params.push(value);
  };
  if (filters.subjectKey !== undefined) add('subject_key = ?', filters.subjectKey);
  if (filters.item !== undefined) add('item = ?', filters.item);
  if (filters.source !== undefined) add('source = ?', filters.source);
  if (filters.from !== undefined) add('consent_at >= ?', filters.from);
  if (filters.to !== undefined) add('consent_at < ?', filters.to);
  if (filters.valid !== undefined) add('valid = ?', filters.valid ? 1 : 0);
  params.push(limit);
  const rows = await db.all<DbAuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, params);
  const out = rows.map(toAuditRow);
  const last = out[out.length - 1];
  return out.length === limit && last !== undefined ? { rows: out, nextCursor: encodeCursor(last.seq) } : { rows: out };
}

/** Every matching row, a page at a time (for NDJSON / CSV export without holding the log in memory). */
export async function* iterateAudit(db: Queryable, filters: AuditFilters, pageSize: number = MAX_AUDIT_PAGE): AsyncGenerator<AuditRow> {
  let cursor: string | undefined;
  do {
    const page = await queryAudit(db, filters, cursor, pageSize);
    yield* page.rows;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

export type ChainVerdict =
  | { ok: true; rows: number; head?: AuditAnchor }
  | {
      ok: false;
      /** seq of the first row that does not verify (for a missing anchor: the anchor's seq). */
      brokenAt: number;
      reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'anchor_missing' | 'anchor_mismatch';
      rows: number;
    };

/**
 * Walks the whole chain in seq order, a page at a time. The first row must follow GENESIS_HASH;
 * each next row's prev_hash must equal the hash of the row before (else a row was deleted,
 * inserted or moved: `prev_hash_mismatch`), and each hash must match its columns (else the row was
 * edited: `hash_mismatch`). With an `anchor` (an earlier `auditHead`), the anchored row must still
 * be there with that hash: truncation of the end and a rewrite of the whole tail are caught too.
 */
export async function verifyAuditChain(db: Queryable, opts: { anchor?: AuditAnchor; pageSize?: number } = {}): Promise<ChainVerdict> {
  return walkChain(db, opts);
}

/** The chain walk of verifyAuditChain; `onRow` sees each row that verified, in chain order. */
async function walkChain(db: Queryable, opts: { anchor?: AuditAnchor; pageSize?: number }, onRow?: (r: DbAuditRow, c: AuditColumns) => void): Promise<ChainVerdict> {
  const pageSize = opts.pageSize ?? MAX_AUDIT_PAGE;
  let prev = GENESIS_HASH;
  let after = 0;
  let rows = 0;
  let anchorSeen = false;
  let head: AuditAnchor | undefined;
  for (;;) {
    const page = await db.all<DbAuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, [after, pageSize]);
    for (const r of page) {
      const seq = Number(r.seq);
      if (r.prev_hash !== prev) return { ok: false, brokenAt: seq, reason: 'prev_hash_mismatch', rows };
      const c = columnsOf(r);
      if (auditHash(r.prev_hash, c) !== r.hash) return { ok: false, brokenAt: seq, reason: 'hash_mismatch', rows };
      if (opts.anchor !== undefined && seq === opts.anchor.seq) {
        if (r.hash !== opts.anchor.hash) return { ok: false, brokenAt: seq, reason: 'anchor_mismatch', rows };
        anchorSeen = true;
      }
      onRow?.(r, c);
      prev = r.hash;
      rows++;
      head = { seq, hash: r.hash };
    }
    const last = page[page.length - 1];
    if (page.length < pageSize || last === undefined) break;
    after = Number(last.seq);
  }
  if (opts.anchor !== undefined && !anchorSeen) return { ok: false, brokenAt: opts.anchor.seq, reason: 'anchor_missing', rows };
  return head === undefined ? { ok: true, rows } : { ok: true, rows, head };
}

/** The first difference between a stored state row and the state the log implies. */
export interface StateMismatch {
  siteId: string;
  /** subject key (`visitor:<id>` / `user:<id>`). */
  subject: string;
  /** For a consent_items difference. */
  item?: string;
  /** A column (`status`, `consent_at`, …), `row` (present on one side only) or `profile`. */
  field: string;
  stored: unknown;
  implied: unknown;
}

export type AuditVerdict =
  | ChainVerdict
  | {
      ok: false;
      /** A row the replay cannot apply: an action it does not know, or a row the store never writes. */
      reason: 'unknown_action' | 'malformed_row';
      brokenAt: number;
      detail: string;
      rows: number;
    }
  | { ok: false; reason: 'state_mismatch'; mismatch: StateMismatch; rows: number };

const sameValue = (a: unknown, b: unknown): boolean => a === b;

/**
 * Keyset pages of a whole table in `order` (the primary key or an index, so each page is a range
 * probe); each row handed to `each`, which may stop the walk by returning a value.
 */
async function walkTable<R extends Record<string, unknown>, T>(db: Queryable, sql: { cols: string; table: string; order: readonly string[] }, pageSize: number, each: (r: R) => T | undefined): Promise<T | undefined> {
  let last: Param[] | undefined;
  const order = sql.order.join(', ');
  for (;;) {
    const where = last === undefined ? '' : `WHERE (${order}) > (${sql.order.map(() => '?').join(', ')})`;
    const page = await db.all<R>(`SELECT ${sql.cols} FROM ${sql.table} ${where} ORDER BY ${order} LIMIT ?`, [...(last ?? []), pageSize]);
    for (const r of page) {
      const out = each(r);
      if (out !== undefined) return out;
    }
    const end = page[page.length - 1];
    if (page.length < pageSize || end === undefined) return undefined;
    last = sql.order.map((k) => end[k] as Param);
  }
}

/**
 * The chain (verifyAuditChain) AND the state: the log is replayed (src/store/replay.ts) into the
 * state it implies, which is compared with consent_items (status, consent_at, valid_until,
 * source, audit_seq), the record part of consent_records (tcf_string, gcm, consent_type,
 * geo_country, consent_at, source) and the partition of subjects into profiles (which subjects
 * share one, not the profile ids). A direct edit of a state row is then caught like an edit of a
 * log row (issue 13). Versions and updated_at are not derivable from the log and not compared.
 *
 * Streaming: the log and each table are read a page at a time; memory is bounded by the size of
 * the implied state (one entry per subject and per item, plus invalid events not yet expired),
 * not by the log. Run in one transaction so the log and the tables are one snapshot: on PostgreSQL
 * REPEATABLE READ (writers are not blocked); on SQLite the transaction is the one writer, so writes
 * wait for the verification (seconds for a large store).
 */
export async function verifyAuditState(db: Queryable | Db, opts: { anchor?: AuditAnchor; pageSize?: number } = {}): Promise<AuditVerdict> {
  if ('transaction' in db) {
    const engine = db.engine;
    return db.transaction(async (tx) => {
      if (engine === 'postgres') await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      return verifyIn(tx, opts);
    });
  }
  return verifyIn(db, opts);
}

async function verifyIn(db: Queryable, opts: { anchor?: AuditAnchor; pageSize?: number }): Promise<AuditVerdict> {
  const pageSize = opts.pageSize ?? MAX_AUDIT_PAGE;
  const replay = new AuditReplay();
  let problem: ReplayProblem | undefined;
  const chain = await walkChain(db, opts, (r, c) => {
    const p = replay.add({ seq: Number(r.seq), site_id: c.site_id, subject_key: c.subject_key, action: c.action, item: c.item, consent_at: c.consent_at, valid_until: c.valid_until, message: c.message, source: c.source, valid: c.valid });
    problem ??= p;
  });
  if (!chain.ok) return chain;
  if (problem !== undefined) return { ok: false, reason: problem.reason, brokenAt: problem.seq, detail: problem.detail, rows: chain.rows };
  const mismatch = (await compareItems(db, replay, pageSize)) ?? (await compareRecords(db, replay, pageSize)) ?? (await compareProfiles(db, replay, pageSize));
  return mismatch === undefined ? chain : { ok: false, reason: 'state_mismatch', mismatch, rows: chain.rows };
}

interface StoredItemRow {
  [key: string]: unknown;
  site_id: string;
  subject_key: string;
  item: string;
  status: string;
  consent_at: unknown;
  valid_until: unknown;
  source: string;
  audit_seq: unknown;
}

async function compareItems(db: Queryable, replay: AuditReplay, pageSize: number): Promise<StateMismatch | undefined> {
  const found = await walkTable<StoredItemRow, StateMismatch>(
    db,
    { cols: 'site_id, subject_key, item, status, consent_at, valid_until, source, audit_seq', table: 'consent_items', order: ['site_id', 'subject_key', 'item'] },
    pageSize,
    (r) => {
      const at = { siteId: r.site_id, subject: r.subject_key, item: r.item };
      const want = replay.item(r.site_id, r.subject_key, r.item);
      if (want === undefined) return { ...at, field: 'row', stored: 'present', implied: 'absent' };
      replay.markItem(r.site_id, r.subject_key, r.item);
      const fields: [string, unknown, unknown][] = [
        ['status', r.status, want.status],
        ['consent_at', num(r.consent_at), want.consentAt],
        ['valid_until', num(r.valid_until), want.validUntil],
        ['source', r.source, want.source],
        ['audit_seq', num(r.audit_seq), want.auditSeq],
      ];
      for (const [field, stored, implied] of fields) if (!sameValue(stored, implied)) return { ...at, field, stored, implied };
      return undefined;
    },
  );
  if (found !== undefined) return found;
  const missing = replay.unseenItem();
  return missing === undefined ? undefined : { siteId: missing.siteId, subject: missing.subjectKey, item: missing.item, field: 'row', stored: 'absent', implied: missing.state };
}

interface StoredRecordRow {
  [key: string]: unknown;
  site_id: string;
  subject_key: string;
  tcf_string: string | null;
  gcm: string | null;
  consent_type: string | null;
  geo_country: string | null;
  consent_at: unknown;
  source: string | null;
}

async function compareRecords(db: Queryable, replay: AuditReplay, pageSize: number): Promise<StateMismatch | undefined> {
  const found = await walkTable<StoredRecordRow, StateMismatch>(
    db,
    { cols: 'site_id, subject_key, tcf_string, gcm, consent_type, geo_country, consent_at, source', table: 'consent_records', order: ['site_id', 'subject_key'] },
    pageSize,
    (r) => {
      const want = replay.record(r.site_id, r.subject_key);
      replay.markRecord(r.site_id, r.subject_key);
      // A subject whose record no `record` row decided keeps a row for its version only: all null.
      const fields: [string, unknown, unknown][] = [
        ['tcf_string', r.tcf_string, want?.tcfString ?? null],
        ['gcm', r.gcm, want?.gcm ?? null],
        ['consent_type', r.consent_type, want?.consentType ?? null],
        ['geo_country', r.geo_country, want?.geoCountry ?? null],
        ['consent_at', num(r.consent_at), want?.consentAt ?? null],
        ['source', r.source, want?.source ?? null],
      ];
      for (const [field, stored, implied] of fields) if (!sameValue(stored, implied)) return { siteId: r.site_id, subject: r.subject_key, field, stored, implied };
      return undefined;
    },
  );
  if (found !== undefined) return found;
  const missing = replay.unseenRecord();
  return missing === undefined ? undefined : { siteId: missing.siteId, subject: missing.subjectKey, field: 'row', stored: 'absent', implied: missing.state };
}

interface StoredSubjectRow {
  [key: string]: unknown;
  site_id: string;
  profile_id: string;
  subject_key: string;
}

async function compareProfiles(db: Queryable, replay: AuditReplay, pageSize: number): Promise<StateMismatch | undefined> {
  // One stored profile at a time (rows come grouped by profile): all its subjects must be one
  // class of the replay, a class no other stored profile matched, and the whole class.
  let group: { siteId: string; profileId: string; members: string[]; cls: string } | undefined;
  const close = (): StateMismatch | undefined => {
    if (group === undefined) return undefined;
    const g = group;
    group = undefined;
    const stored = g.members.slice(0, 10);
    if (!replay.markProfile(g.cls) || replay.profileSize(g.cls) !== g.members.length) {
      return { siteId: g.siteId, subject: g.members[0]!, field: 'profile', stored, implied: replay.members(g.cls) };
    }
    return undefined;
  };
  const found = await walkTable<StoredSubjectRow, StateMismatch>(
    db,
    { cols: 'site_id, profile_id, subject_key', table: 'subjects', order: ['site_id', 'profile_id', 'subject_key'] },
    pageSize,
    (r) => {
      const cls = replay.profileOf(r.site_id, r.subject_key);
      if (cls === undefined) return { siteId: r.site_id, subject: r.subject_key, field: 'row', stored: 'present', implied: 'absent' };
      if (group !== undefined && (group.siteId !== r.site_id || group.profileId !== r.profile_id)) {
        const m = close();
        if (m !== undefined) return m;
      }
      if (group === undefined) {
        group = { siteId: r.site_id, profileId: r.profile_id, members: [r.subject_key], cls };
        return undefined;
      }
      if (group.cls !== cls) return { siteId: r.site_id, subject: r.subject_key, field: 'profile', stored: group.members.slice(0, 10), implied: replay.members(cls) };
      group.members.push(r.subject_key);
      return undefined;
    },
  );
  if (found !== undefined) return found;
  const last = close();
  if (last !== undefined) return last;
  const missing = replay.unseenSubject();
  return missing === undefined ? undefined : { siteId: missing.siteId, subject: missing.subjectKey, field: 'row', stored: 'absent', implied: 'present' };
}
