import { createHash, randomUUID } from 'node:crypto';
import { powerOfTwoParts } from './parts.ts';
import { supersedes, type ConsentClaim } from '../consent/last-write-wins.ts';
import { InternalError, NotFoundError, ValidationError } from '../errors.ts';
import { appendAudit, appendAuditRows, auditAttributesJson, chainHeadHash, lockAuditChain, storableText, type AuditColumns } from './audit.ts';
import type { Db, Param, Queryable } from './db.ts';
import { idProblem, MAX_ITEM_TEXT } from './ids.ts';
import { notifyChanges } from './notify.ts';
import { gcmText, inputClaim, replayAudit, type ReplayRow } from './replay.ts';
import { parseSubjectKey, subjectKey, type ChangeHook, type ChangesHook, type ConsentChange, type ConsentInput, type InputOutcome, type ItemState, type RecordPatch, type SubjectConsent, type SubjectRef } from './types.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

/**
 * The consent store: consent inputs in, per-subject state and the audit log out, on either engine.
 *
 * State rules (DESIGN.md "consent store", seeds bloomreach-tracking-consent.txt and
 * seeka-server-side-consent.txt):
 * - per (subject, item), last-write-wins by the consent's own time (`consentAt`), not by arrival;
 *   at equal times the more restrictive input wins (denied over granted, then the earlier expiry),
 *   then the smaller source, so the final state never depends on arrival order (the one rule of
 *   src/consent/last-write-wins.ts, which the per-hit merge applies too);
 * - an invalid input is applied as a reject (it revokes);
 * - every input is audited, applied or not, unless it is a duplicate (same dedup key), which
 *   changes nothing at all: that is what makes re-imports idempotent;
 * - subjects linked by an input (a user id with a visitor id) share a profile; a read merges the
 *   profile's items with the same rule, and an item whose validUntil has passed reads as denied.
 *
 * A change is a change of what `read` returns for a subject (items, record, linked subjects); each
 * change bumps the version of every subject of the profile to one above the profile's highest, so
 * a merged version only ever increases.
 */

export interface ConsentStoreOptions {
  /** Time of writes, and of reads without an explicit time; default the system clock. */
  clock?: Clock;
  /** Inside the writing transaction, once per changed subject: a throw rolls the whole call back. */
  onChange?: ChangeHook;
  /**
   * Instead of onChange: once per call with all its changes in order (one webhook subscription
   * lookup per chunk of an import instead of one per subject). Not called when nothing changed.
   */
  onChanges?: ChangesHook;
  /**
   * Inputs from which one apply goes in bulk (default 20, as the prefetch). The one-by-one path
   * gives the same result; tests set Infinity to compare the two.
   */
  bulkFrom?: number;
  /** After commit, with every change of the call (cache invalidation). */
  afterCommit?: (changes: ConsentChange[]) => void;
  /**
   * A throw from afterCommit: the write is committed and acknowledged regardless (reporting it as
   * failed would make the client retry a write that happened). Default: ignored.
   */
  onAfterCommitError?: (err: unknown) => void;
}

/** What `link` did: `refused` when a visitor would join two profiles that each hold a user. */
export type LinkResult = 'linked' | 'already' | 'refused';

export interface ConsentStore {
  /** All inputs and patches in ONE transaction; resolves after commit. */
  apply(inputs: readonly ConsentInput[], patches?: readonly RecordPatch[]): Promise<InputOutcome[]>;
  read(siteId: string, subject: SubjectRef, now?: number): Promise<SubjectConsent | undefined>;
  link(siteId: string, a: SubjectRef, b: SubjectRef): Promise<LinkResult>;
  /** Expires invalid consent events (by audit seq, or all of one subject's item): see `ExpireTarget`. */
  expire(siteId: string, target: ExpireTarget, meta?: ExpireMeta): Promise<ExpireResult>;
}

/**
 * Which invalid events to expire: audit seqs (each must be an invalid consent event of the site:
 * unknown → NotFoundError, anything else → ValidationError, naming it), or every invalid event of
 * one subject's item not yet expired (at most MAX_EXPIRE per call; `more` says to call again).
 */
export type ExpireTarget = { seqs: readonly number[] } | { subject: SubjectRef; item: string };

export interface ExpireMeta {
  /** The audit row's source; default `api`. */
  source?: string;
  apiKeyId?: string;
}

export interface ExpireResult {
  /** Per event: whether this call expired it (false: it already was), and the seq of its `expire` row. */
  events: { seq: number; expired: boolean; auditSeq: number }[];
  /** By subject and item: more invalid events are left (call again). */
  more: boolean;
}

/** Most events one expire call handles (each is an audit row and an item recomputed). */
export const MAX_EXPIRE = 500;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The audit columns the replay reads (src/store/replay.ts). */
const REPLAY_COLUMNS = 'seq, site_id, subject_key, action, item, consent_at, valid_until, message, source, valid';

interface ReplayDbRow {
  [key: string]: unknown;
  seq: unknown;
  site_id: string;
  subject_key: string;
  action: string;
  item: string | null;
  consent_at: unknown;
  valid_until: unknown;
  message: string | null;
  source: string;
  valid: unknown;
}

function replayRowOf(r: ReplayDbRow): ReplayRow {
  return { ...r, seq: Number(r.seq), consent_at: num(r.consent_at), valid_until: num(r.valid_until), valid: Number(r.valid) === 1 ? 1 : 0 };
}

/**
 * The audit row of a link that changed a profile (issue 13: links are state, so they are in the
 * log and replay): `a` and `b` share a profile from then on; `a === b` records that the link
 * created the subject without joining it to anything (a refused link, or a subject linked to itself).
 * The dedup key includes the chain head, so it never collides: a link is never a duplicate.
 */
function linkAuditRow(siteId: string, a: string, b: string, source: string, head: string, now: number): AuditColumns {
  return {
    site_id: siteId,
    subject_key: a,
    action: 'link',
    item: null,
    consent_at: null,
    valid_until: null,
    message: b,
    source: storableText(source),
    identification: null,
    identification_type: null,
    imported_at: now,
    api_key_id: null,
    payload_hash: sha256(JSON.stringify([a, b])),
    valid: 1,
    invalid_reason: null,
    applied: 1,
    dedup_key: sha256(JSON.stringify(['link', siteId, a, b, head])),
    attributes: null,
  };
}

type Status = 'granted' | 'denied';

/** A stored or incoming item's state, ordered by the one consent precedence rule (src/consent/last-write-wins.ts). */
type Decision = ConsentClaim & { status: Status; validUntil: number | null };

/**
 * The dedup key an input is stored under. Default: SHA-256 of (site, subject, action, item,
 * consentAt, validUntil, valid), the fields that decide the state. A caller's own key is hashed with
 * the site so two sites cannot collide on it.
 */
export function dedupKeyOf(input: ConsentInput): string {
  const parts = input.dedupKey === undefined
    ? ['v1', input.siteId, subjectKey(input.subject), input.action, input.item, input.consentAt, input.validUntil, input.valid]
    : ['key', input.siteId, input.dedupKey];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function checkSubject(s: SubjectRef, path: string): void {
  if ((s.type !== 'visitor' && s.type !== 'user') || typeof s.id !== 'string' || s.id === '') {
    throw new ValidationError(`${path}: a visitor or user with an id`, { details: { issues: [{ path, message: 'invalid' }] } });
  }
  // The routes check ids first (src/store/ids.ts); this is the floor, so no caller can hand the
  // engines text they would store differently (or PostgreSQL refuse mid-transaction).
  const problem = idProblem(s.id);
  if (problem !== undefined) throw new ValidationError(`${path}.id: ${problem}`, { details: { issues: [{ path: `${path}.id`, message: problem }] } });
}

/** Only what the types cannot promise: the hash chain and the SQL need exact integers and ids. */
function checkInput(input: ConsentInput, i: number): void {
  const bad = (field: string): never => {
    throw new ValidationError(`inputs[${i}].${field}: invalid`, { details: { issues: [{ path: `inputs.${i}.${field}`, message: 'invalid' }] } });
  };
  checkSubject(input.subject, `inputs.${i}.subject`);
  for (const l of input.links ?? []) checkSubject(l, `inputs.${i}.links`);
  if (input.action !== 'accept' && input.action !== 'reject') bad('action');
  if (idProblem(input.item, MAX_ITEM_TEXT) !== undefined) bad('item');
  if (!isTime(input.consentAt)) bad('consentAt');
  if (input.validUntil !== null && !isTime(input.validUntil)) bad('validUntil');
}

/** What `read` returns, minus the subject it was asked for: the same for every subject of a profile. */
interface ProfileView extends Omit<SubjectConsent, 'siteId' | 'subject'> {
  profileId: string;
}

interface ProfileRow {
  [key: string]: unknown;
  profile_id: string | null;
  subject_key: string;
  item: string | null;
  status: string | null;
  consent_at: number | null;
  valid_until: number | null;
  source: string | null;
  version: number | null;
  tcf_string: string | null;
  gcm: string | null;
  consent_type: string | null;
  geo_country: string | null;
  updated_at: number | null;
}

// One statement, so a read is one consistent snapshot on both engines: the profile's subjects
// with their records, then the profile's items. The items are probed by primary key per subject
// (IN): as a join, SQLite without statistics scans every item of the site.
const PROFILE_SQL = `
SELECT s.profile_id AS profile_id, s.subject_key AS subject_key, CAST(NULL AS TEXT) AS item, CAST(NULL AS TEXT) AS status,
  r.consent_at AS consent_at, CAST(NULL AS BIGINT) AS valid_until, r.source AS source, r.version AS version,
  r.tcf_string AS tcf_string, r.gcm AS gcm, r.consent_type AS consent_type, r.geo_country AS geo_country, r.updated_at AS updated_at
FROM subjects s LEFT JOIN consent_records r ON r.site_id = s.site_id AND r.subject_key = s.subject_key
WHERE s.site_id = ? AND s.profile_id = (SELECT profile_id FROM subjects WHERE site_id = ? AND subject_key = ?)
UNION ALL
SELECT CAST(NULL AS TEXT), i.subject_key, i.item, i.status, i.consent_at, i.valid_until, i.source, CAST(NULL AS BIGINT),
  CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT)
FROM consent_items i
WHERE i.site_id = ? AND i.subject_key IN (
  SELECT subject_key FROM subjects WHERE site_id = ? AND profile_id = (SELECT profile_id FROM subjects WHERE site_id = ? AND subject_key = ?))`;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function parseGcm(text: string | null): Record<string, 'granted' | 'denied'> | null {
  if (text === null) return null;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    const out: Record<string, 'granted' | 'denied'> = {};
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) if (v === 'granted' || v === 'denied') out[k] = v;
    return out;
  } catch {
    return null;
  }
}

async function loadProfile(q: Queryable, siteId: string, key: string, now: number): Promise<ProfileView | undefined> {
  const rows = await q.all<ProfileRow>(PROFILE_SQL, [siteId, siteId, key, siteId, siteId, siteId, key]);
  const profileId = rows.find((r) => r.item === null)?.profile_id;
  if (profileId === undefined || profileId === null) return undefined;
  return profileViewOf(profileId, rows, now);
}

/** Keys per query of a bulk read, a power of two (src/store/parts.ts), well under SQLite's and PostgreSQL's bound-parameter limits. */
const BULK_KEYS = 512;

/**
 * The views of many subjects of one site in a few queries (the subjects' profiles, their members
 * with records, the members' items), each built exactly as loadProfile builds one: a chunk of an
 * import names hundreds of subjects, and one round trip each was most of its cost on PostgreSQL.
 * A subject without a profile maps to undefined.
 */
async function loadProfiles(q: Queryable, siteId: string, keys: readonly string[], now: number): Promise<Map<string, ProfileView | undefined>> {
  const profileOf = new Map<string, string>();
  for (const part of powerOfTwoParts(keys, BULK_KEYS)) {
    const rows = await q.all<{ subject_key: string; profile_id: string }>(`SELECT subject_key, profile_id FROM subjects WHERE site_id = ? AND subject_key IN (${part.map(() => '?').join(', ')})`, [siteId, ...part]);
    for (const r of rows) profileOf.set(r.subject_key, r.profile_id);
  }
  const rowsByProfile = new Map<string, ProfileRow[]>();
  const memberProfile = new Map<string, string>();
  for (const part of powerOfTwoParts([...new Set(profileOf.values())], BULK_KEYS)) {
    const rows = await q.all<ProfileRow>(
      `SELECT s.profile_id AS profile_id, s.subject_key AS subject_key, CAST(NULL AS TEXT) AS item, CAST(NULL AS TEXT) AS status,
         r.consent_at AS consent_at, CAST(NULL AS BIGINT) AS valid_until, r.source AS source, r.version AS version,
         r.tcf_string AS tcf_string, r.gcm AS gcm, r.consent_type AS consent_type, r.geo_country AS geo_country, r.updated_at AS updated_at
       FROM subjects s LEFT JOIN consent_records r ON r.site_id = s.site_id AND r.subject_key = s.subject_key
       WHERE s.site_id = ? AND s.profile_id IN (${part.map(() => '?').join(', ')})`,
      [siteId, ...part],
    );
    for (const r of rows) {
      const id = r.profile_id!;
      memberProfile.set(r.subject_key, id);
      const list = rowsByProfile.get(id) ?? [];
      list.push(r);
      rowsByProfile.set(id, list);
    }
  }
  for (const part of powerOfTwoParts([...memberProfile.keys()], BULK_KEYS)) {
    const rows = await q.all<ProfileRow>(
      `SELECT CAST(NULL AS TEXT) AS profile_id, subject_key, item, status, consent_at, valid_until, source, CAST(NULL AS BIGINT) AS version,
         CAST(NULL AS TEXT) AS tcf_string, CAST(NULL AS TEXT) AS gcm, CAST(NULL AS TEXT) AS consent_type, CAST(NULL AS TEXT) AS geo_country, CAST(NULL AS BIGINT) AS updated_at
       FROM consent_items WHERE site_id = ? AND subject_key IN (${part.map(() => '?').join(', ')})`,
      [siteId, ...part],
    );
    for (const r of rows) rowsByProfile.get(memberProfile.get(r.subject_key)!)!.push(r);
  }
  const views = new Map<string, ProfileView>();
  for (const [id, rows] of rowsByProfile) views.set(id, profileViewOf(id, rows, now));
  const out = new Map<string, ProfileView | undefined>();
  for (const k of keys) {
    const id = profileOf.get(k);
    out.set(k, id === undefined ? undefined : views.get(id));
  }
  return out;
}

/** A profile's view from its rows (PROFILE_SQL's shape, in any order). */
function profileViewOf(profileId: string, rows: readonly ProfileRow[], now: number): ProfileView {
  const members: string[] = [];
  const records: { key: string; consentAt: number | null; row: ProfileRow }[] = [];
  const best = new Map<string, Decision>();
  let version = 0;
  let updatedAt = 0;
  let consentAt: number | null = null;
  const later = (t: number | null): void => {
    if (t !== null && (consentAt === null || t > consentAt)) consentAt = t;
  };
  for (const r of rows) {
    if (r.item === null) {
      members.push(r.subject_key);
      version = Math.max(version, num(r.version) ?? 0);
      updatedAt = Math.max(updatedAt, num(r.updated_at) ?? 0);
      if (r.version !== null) records.push({ key: r.subject_key, consentAt: num(r.consent_at), row: r });
      later(num(r.consent_at));
      continue;
    }
    const d: Decision = { status: r.status === 'granted' ? 'granted' : 'denied', at: Number(r.consent_at), validUntil: num(r.valid_until), source: r.source ?? '' };
    const cur = best.get(r.item);
    if (cur === undefined || supersedes(d, cur)) best.set(r.item, d);
    later(d.at);
  }
  // Null prototype: an item id is client data ("constructor", "__proto__" pass the id rules), and
  // a lookup of one must find the record's own item or nothing (issue 13).
  const items = Object.create(null) as Record<string, ItemState>;
  for (const item of [...best.keys()].sort()) {
    const d = best.get(item)!;
    const expired = d.validUntil !== null && d.validUntil <= now;
    items[item] = { item, status: expired ? 'denied' : d.status, consentAt: d.at, validUntil: d.validUntil, source: d.source, expired };
  }
  // The record part, per field: the newest record (by its consentAt; ties by subject key) that
  // holds a value, so a user's TCF string and a visitor's gcm flags both survive a merge.
  records.sort((a, b) => (b.consentAt ?? -1) - (a.consentAt ?? -1) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const field = (name: 'tcf_string' | 'gcm' | 'consent_type' | 'geo_country'): string | null => records.find((r) => r.row[name] !== null)?.row[name] ?? null;
  members.sort();
  return {
    profileId,
    linked: members.map(parseSubjectKey),
    version,
    items,
    tcfString: field('tcf_string'),
    gcm: parseGcm(field('gcm')),
    consentType: field('consent_type'),
    geoCountry: field('geo_country'),
    consentAt,
    updatedAt,
  };
}

function itemKey(s: ItemState): string {
  return JSON.stringify([s.status, s.consentAt, s.validUntil, s.source, s.expired]);
}

function recordKey(v: ProfileView): string {
  return JSON.stringify([v.tcfString, gcmText(v.gcm), v.consentType, v.geoCountry]);
}

const EMPTY_RECORD = JSON.stringify([null, null, null, null]);

/** Everything a reader sees except version and updatedAt (which the change itself moves). */
function viewKey(v: ProfileView | undefined): string {
  if (v === undefined) return '';
  return JSON.stringify([v.linked.map(subjectKey), Object.values(v.items).map((s) => [s.item, itemKey(s)]), recordKey(v), v.consentAt]);
}

interface RecordRow {
  [key: string]: unknown;
  consent_at: number | null;
  tcf_string: string | null;
  gcm: string | null;
  consent_type: string | null;
  geo_country: string | null;
}

/** A consent_items row as the last-write-wins comparison reads it. */
type StoredItem = {
  status: string;
  consent_at: number;
  valid_until: number | null;
  source: string;
};

/** Subjects per prefetch query (well under SQLite's and PostgreSQL's bound-parameter limits). */
const PREFETCH_SUBJECTS = 512;
/** Inputs from which a batch prefetches its stored items (a single push just asks). */
const PREFETCH_FROM = 20;

function itemKey3(siteId: string, subjectKey: string, item: string): string {
  return `${siteId}\u0000${subjectKey}\u0000${item}`;
}

/**
 * Writes an item's state (params: site, subject key, item, status, consent_at, valid_until, source,
 * audit_seq). A write clears the expiry marker: the sweep (src/store/expiry.ts) judges the new row.
 */
const writeItemsSql = (n: number): string => `INSERT INTO consent_items (site_id, subject_key, item, status, consent_at, valid_until, source, audit_seq) VALUES ${new Array<string>(n).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
  ON CONFLICT (site_id, subject_key, item) DO UPDATE SET status = excluded.status, consent_at = excluded.consent_at,
    valid_until = excluded.valid_until, source = excluded.source, audit_seq = excluded.audit_seq, expiry_noted_at = NULL`;
const WRITE_ITEM_SQL = writeItemsSql(1);

/**
 * Sets a subject's version (a subject without a record keeps a row for its version only). The
 * caller picks it one above its profile's highest (see the top of this file); the expiry sweep
 * (src/store/expiry.ts) bumps through here too.
 */
export async function writeVersion(q: Queryable, siteId: string, key: string, version: number, now: number): Promise<void> {
  await writeVersions(q, [[siteId, key, version, now]]);
}

/** writeVersion for many distinct subjects (site, key, version, now each), a few per statement. */
async function writeVersions(q: Queryable, rows: readonly Param[][]): Promise<void> {
  for (const part of powerOfTwoParts(rows, 128)) {
    await q.run(
      `INSERT INTO consent_records (site_id, subject_key, version, updated_at) VALUES ${new Array<string>(part.length).fill('(?, ?, ?, ?)').join(', ')} ON CONFLICT (site_id, subject_key) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
      part.flat(),
    );
  }
}

/** The audit row of a consent input (what `input` and `inputsUnlinked` append). */
function inputAuditRow(input: ConsentInput, key: string, decision: Decision, applied: boolean, dedupKey: string, now: number): AuditColumns {
  const text = (v: string | undefined): string | null => (v === undefined ? null : storableText(v));
  return {
    site_id: input.siteId,
    subject_key: key,
    action: input.action,
    item: storableText(input.item),
    consent_at: input.consentAt,
    valid_until: input.validUntil,
    message: text(input.message),
    source: decision.source,
    identification: text(input.identification),
    identification_type: text(input.identificationType),
    imported_at: now,
    api_key_id: text(input.apiKeyId),
    payload_hash: input.payloadHash,
    valid: input.valid ? 1 : 0,
    invalid_reason: text(input.invalidReason),
    applied: applied ? 1 : 0,
    dedup_key: dedupKey,
    attributes: auditAttributesJson(input.attributes) ?? null,
  };
}

/** One apply or link: the transaction's state (chain head, views before the first write). */
class Writer {
  private head = '';
  /** False until the head is read: a link that changes nothing (most hits) never reads it. */
  private headKnown = false;
  /** subject key (per site) → its view before this transaction touched it. */
  private readonly before = new Map<string, { siteId: string; key: string; view: ProfileView | undefined }>();

  private readonly tx: Queryable;
  private readonly engine: Db['engine'];
  private readonly now: number;
  private readonly onChange: ChangeHook | undefined;
  private readonly onChanges: ChangesHook | undefined;

  constructor(tx: Queryable, engine: Db['engine'], now: number, hooks: Pick<ConsentStoreOptions, 'onChange' | 'onChanges'>) {
    this.tx = tx;
    this.engine = engine;
    this.now = now;
    this.onChange = hooks.onChange;
    this.onChanges = hooks.onChanges;
  }

  /**
   * Stored items of the subjects a large batch names, read up front in a few queries instead of
   * one per input (on PostgreSQL each query is a round trip). `null`: known to be absent. Kept in
   * step with the items this transaction writes.
   */
  private readonly items = new Map<string, StoredItem | null>();

  async prefetchItems(inputs: readonly ConsentInput[]): Promise<void> {
    const bySite = new Map<string, Set<string>>();
    for (const input of inputs) {
      const keys = bySite.get(input.siteId) ?? new Set<string>();
      keys.add(subjectKey(input.subject));
      bySite.set(input.siteId, keys);
    }
    for (const [siteId, keys] of bySite) {
      const all = [...keys];
      for (const part of powerOfTwoParts(all, PREFETCH_SUBJECTS)) {
        const rows = await this.tx.all<StoredItem & { subject_key: string; item: string }>(
          `SELECT subject_key, item, status, consent_at, valid_until, source FROM consent_items WHERE site_id = ? AND subject_key IN (${part.map(() => '?').join(', ')})`,
          [siteId, ...part],
        );
        const asked = new Set(part);
        for (const input of inputs) {
          const key = subjectKey(input.subject);
          if (input.siteId === siteId && asked.has(key)) this.items.set(itemKey3(siteId, key, input.item), null);
        }
        for (const r of rows) this.items.set(itemKey3(siteId, r.subject_key, r.item), { status: r.status, consent_at: r.consent_at, valid_until: r.valid_until, source: r.source });
      }
    }
  }

  async start(withChain: boolean): Promise<void> {
    // Link writes subjects only, but takes the lock too: on PostgreSQL every writer of subjects
    // is then serialised, so two instances cannot create or merge the same profile at once.
    await lockAuditChain(this.tx, this.engine);
    if (withChain) {
      this.head = await chainHeadHash(this.tx);
      this.headKnown = true;
    }
  }

  /** Appends a row the store must write (never a duplicate); the head moves on. */
  private async appendOwn(row: (head: string) => AuditColumns): Promise<number> {
    if (!this.headKnown) {
      this.head = await chainHeadHash(this.tx);
      this.headKnown = true;
    }
    const appended = await appendAudit(this.tx, this.head, row(this.head));
    if (appended === undefined) throw new InternalError('an audit row the store writes collided with an existing dedup key');
    this.head = appended.hash;
    return appended.seq;
  }

  /** Remembers the views of `key`'s whole profile before anything of it is written. */
  private async capture(siteId: string, key: string): Promise<void> {
    const id = `${siteId}\u0000${key}`;
    if (this.before.has(id)) return;
    const view = await loadProfile(this.tx, siteId, key, this.now);
    if (view === undefined) {
      this.before.set(id, { siteId, key, view });
      return;
    }
    for (const m of view.linked) {
      const mk = subjectKey(m);
      this.before.set(`${siteId}\u0000${mk}`, { siteId, key: mk, view });
    }
  }

  /**
   * Profile of each subject this transaction has seen: an import names the same customer once per
   * category, and asking the database each time was most of an import's cost. A merge clears it.
   */
  private readonly profiles = new Map<string, string>();

  /** Subjects this transaction created (a link that creates one audits it, see link). */
  private readonly created = new Set<string>();

  private async ensureSubject(siteId: string, key: string): Promise<string> {
    const id = `${siteId}\u0000${key}`;
    const known = this.profiles.get(id);
    if (known !== undefined) return known;
    await this.capture(siteId, key);
    const inserted = await this.tx.run('INSERT INTO subjects (site_id, subject_key, profile_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (site_id, subject_key) DO NOTHING', [siteId, key, randomUUID(), this.now]);
    if (inserted > 0) this.created.add(id);
    const row = await this.tx.get<{ profile_id: string }>('SELECT profile_id FROM subjects WHERE site_id = ? AND subject_key = ?', [siteId, key]);
    this.profiles.set(id, row!.profile_id);
    return row!.profile_id;
  }

  async link(siteId: string, a: SubjectRef, b: SubjectRef, source = 'link'): Promise<LinkResult> {
    const result = await this.linkUnaudited(siteId, a, b);
    const ka = subjectKey(a);
    const kb = subjectKey(b);
    // Every link that changes a profile is in the log (src/store/replay.ts replays it): a join,
    // or a subject the link created on its own.
    if (result === 'linked') {
      this.created.delete(`${siteId}\u0000${ka}`);
      this.created.delete(`${siteId}\u0000${kb}`);
      await this.appendOwn((head) => linkAuditRow(siteId, ka, kb, source, head, this.now));
    } else {
      for (const k of new Set([ka, kb])) {
        if (this.created.delete(`${siteId}\u0000${k}`)) await this.appendOwn((head) => linkAuditRow(siteId, k, k, source, head, this.now));
      }
    }
    return result;
  }

  private async linkUnaudited(siteId: string, a: SubjectRef, b: SubjectRef): Promise<LinkResult> {
    const ka = subjectKey(a);
    const kb = subjectKey(b);
    const pa = await this.ensureSubject(siteId, ka);
    const pb = await this.ensureSubject(siteId, kb);
    if (pa === pb) return 'already';
    // A visitor id is weak evidence (a shared or borrowed browser): it never joins two people
    // who are each known by a user id, or one person's consent would decide for the other. Two
    // user ids named together by the integrator are a deliberate statement and do merge.
    if (a.type !== 'user' || b.type !== 'user') {
      const users = await this.tx.all<{ profile_id: string }>("SELECT DISTINCT profile_id FROM subjects WHERE site_id = ? AND profile_id IN (?, ?) AND subject_key LIKE 'user:%'", [siteId, pa, pb]);
      if (users.length === 2) return 'refused';
    }
    // The surviving id is the smaller: merges are deterministic whatever the order of links.
    const [keep, gone] = pa < pb ? [pa, pb] : [pb, pa];
    await this.tx.run('UPDATE subjects SET profile_id = ? WHERE site_id = ? AND profile_id = ?', [keep, siteId, gone]);
    this.profiles.clear();
    return 'linked';
  }

  /** Links all the ids of one input: user ids with each other first, then the visitors to a user. */
  private async linkAll(siteId: string, refs: readonly SubjectRef[], source: string): Promise<void> {
    const users = refs.filter((r) => r.type === 'user');
    const visitors = refs.filter((r) => r.type !== 'user');
    const anchor = users[0] ?? visitors[0];
    if (anchor === undefined) return;
    for (const r of [...users, ...visitors]) if (r !== anchor) await this.link(siteId, anchor, r, source);
  }

  async input(input: ConsentInput): Promise<InputOutcome> {
    const key = subjectKey(input.subject);
    const decision: Decision = inputClaim(input.action, input.valid, input.consentAt, input.validUntil, storableText(input.source));
    const known = this.items.get(itemKey3(input.siteId, key, input.item));
    const stored =
      known !== undefined
        ? (known ?? undefined)
        : await this.tx.get<StoredItem>('SELECT status, consent_at, valid_until, source FROM consent_items WHERE site_id = ? AND subject_key = ? AND item = ?', [input.siteId, key, input.item]);
    const applied =
      stored === undefined ||
      supersedes(decision, { status: stored.status === 'granted' ? 'granted' : 'denied', at: Number(stored.consent_at), validUntil: num(stored.valid_until), source: stored.source });
    const row = inputAuditRow(input, key, decision, applied, dedupKeyOf(input), this.now);
    const appended = await appendAudit(this.tx, this.head, row);
    const base = input.invalidReason === undefined ? { valid: input.valid } : { valid: input.valid, invalidReason: input.invalidReason };
    if (appended === undefined) {
      const original = await this.tx.get<{ seq: number }>('SELECT seq FROM audit_log WHERE dedup_key = ?', [row.dedup_key]);
      return { auditSeq: original === undefined ? null : Number(original.seq), ...base, applied: false, duplicate: true };
    }
    this.head = appended.hash;
    await this.ensureSubject(input.siteId, key);
    if (input.links !== undefined && input.links.length > 0) await this.linkAll(input.siteId, [input.subject, ...input.links], decision.source);
    if (applied) {
      await this.tx.run(
        WRITE_ITEM_SQL,
        [input.siteId, key, row.item, decision.status, decision.at, decision.validUntil, decision.source, appended.seq],
      );
      if (this.items.size > 0) this.items.set(itemKey3(input.siteId, key, storableText(input.item)), { status: decision.status, consent_at: decision.at, valid_until: decision.validUntil, source: decision.source });
    }
    return { auditSeq: appended.seq, ...base, applied, duplicate: false };
  }

  /**
   * Inputs that link nothing, in order, with exactly the effects `input` has one by one (the same
   * audit rows, hashes, seqs in chain order, outcomes, items, subjects and before-views), in a few
   * bulk statements: their dedup keys looked up at once, each input decided in memory against the
   * prefetched items (prefetchItems first) and the inputs before it, the audit rows appended in
   * multi-row INSERTs, the subjects created and the final item states written once per item.
   */
  async inputsUnlinked(inputs: readonly ConsentInput[]): Promise<InputOutcome[]> {
    if (inputs.length === 0) return [];
    const keys = inputs.map(dedupKeyOf);
    // Stored before this run (under the lock, so nothing else writes the log meanwhile).
    const stored = new Map<string, number>();
    for (const part of powerOfTwoParts([...new Set(keys)], BULK_KEYS)) {
      const rows = await this.tx.all<{ seq: unknown; dedup_key: string }>(`SELECT seq, dedup_key FROM audit_log WHERE dedup_key IN (${part.map(() => '?').join(', ')})`, part);
      for (const r of rows) stored.set(r.dedup_key, Number(r.seq));
    }
    // Views before any write, in the order `input` would have captured them.
    const toCapture = new Map<string, string[]>();
    const pendingKeys = new Set<string>();
    inputs.forEach((input, i) => {
      const dk = keys[i]!;
      if (stored.has(dk) || pendingKeys.has(dk)) return;
      pendingKeys.add(dk);
      const key = subjectKey(input.subject);
      if (this.profiles.has(`${input.siteId}\u0000${key}`) || this.before.has(`${input.siteId}\u0000${key}`)) return;
      const list = toCapture.get(input.siteId) ?? [];
      list.push(key);
      toCapture.set(input.siteId, list);
    });
    const loaded = new Map<string, ProfileView | undefined>();
    for (const [siteId, list] of toCapture) {
      for (const [k, v] of await loadProfiles(this.tx, siteId, [...new Set(list)], this.now)) loaded.set(`${siteId}\u0000${k}`, v);
    }
    type Plan = { row: AuditColumns; base: { valid: boolean; invalidReason?: string }; applied: boolean; decision: Decision; index: number };
    const plans: Plan[] = [];
    /** Per input: the plan it appends, or the dedup key of the row it duplicates. */
    const slots: ({ plan: Plan } | { duplicateOf: string })[] = [];
    const firstOf = new Map<string, Plan>();
    inputs.forEach((input, i) => {
      const dk = keys[i]!;
      if (stored.has(dk) || firstOf.has(dk)) {
        slots.push({ duplicateOf: dk });
        return;
      }
      const key = subjectKey(input.subject);
      const id = `${input.siteId}\u0000${key}`;
      if (!this.profiles.has(id) && !this.before.has(id)) {
        const view = loaded.get(id);
        if (view === undefined) this.before.set(id, { siteId: input.siteId, key, view });
        else for (const m of view.linked) this.before.set(`${input.siteId}\u0000${subjectKey(m)}`, { siteId: input.siteId, key: subjectKey(m), view });
      }
      const decision: Decision = inputClaim(input.action, input.valid, input.consentAt, input.validUntil, storableText(input.source));
      const known = this.items.get(itemKey3(input.siteId, key, input.item));
      if (known === undefined) throw new InternalError('inputsUnlinked: the items of the inputs were not prefetched');
      const applied = known === null || supersedes(decision, { status: known.status === 'granted' ? 'granted' : 'denied', at: Number(known.consent_at), validUntil: num(known.valid_until), source: known.source });
      const row = inputAuditRow(input, key, decision, applied, dk, this.now);
      const base = input.invalidReason === undefined ? { valid: input.valid } : { valid: input.valid, invalidReason: input.invalidReason };
      const plan: Plan = { row, base, applied, decision, index: i };
      plans.push(plan);
      firstOf.set(dk, plan);
      slots.push({ plan });
      if (applied) this.items.set(itemKey3(input.siteId, key, row.item!), { status: decision.status, consent_at: decision.at, valid_until: decision.validUntil, source: decision.source });
    });
    const appended = await appendAuditRows(this.tx, this.engine, this.head, plans.map((p) => p.row));
    const seqOf = new Map<Plan, number>();
    plans.forEach((p, j) => seqOf.set(p, appended[j]!.seq));
    if (appended.length > 0) this.head = appended[appended.length - 1]!.hash;
    await this.ensureSubjects(plans.map((p) => ({ siteId: p.row.site_id, key: p.row.subject_key })));
    // The last applied input of each item decides what its row holds (each write replaced all of it).
    const finalItems = new Map<string, Param[]>();
    for (const p of plans) {
      if (!p.applied) continue;
      const r = p.row;
      finalItems.set(itemKey3(r.site_id, r.subject_key, r.item!), [r.site_id, r.subject_key, r.item, p.decision.status, p.decision.at, p.decision.validUntil, p.decision.source, seqOf.get(p)!]);
    }
    await this.writeItems([...finalItems.values()]);
    return slots.map((slot, i) => {
      if ('plan' in slot) return { auditSeq: seqOf.get(slot.plan)!, ...slot.plan.base, applied: slot.plan.applied, duplicate: false };
      const input = inputs[i]!;
      const base = input.invalidReason === undefined ? { valid: input.valid } : { valid: input.valid, invalidReason: input.invalidReason };
      const first = firstOf.get(slot.duplicateOf);
      return { auditSeq: first !== undefined ? seqOf.get(first)! : stored.get(slot.duplicateOf)!, ...base, applied: false, duplicate: true };
    });
  }

  /** ensureSubject for many (before-views already captured): the missing ones created at once. */
  private async ensureSubjects(list: readonly { siteId: string; key: string }[]): Promise<void> {
    const bySite = new Map<string, Set<string>>();
    for (const { siteId, key } of list) {
      if (this.profiles.has(`${siteId}\u0000${key}`)) continue;
      const set = bySite.get(siteId) ?? new Set<string>();
      set.add(key);
      bySite.set(siteId, set);
    }
    for (const [siteId, set] of bySite) {
      for (const part of powerOfTwoParts([...set], BULK_KEYS / 4)) {
        const params: Param[] = [];
        for (const key of part) params.push(siteId, key, randomUUID(), this.now);
        const created = await this.tx.all<{ subject_key: string }>(
          `INSERT INTO subjects (site_id, subject_key, profile_id, created_at) VALUES ${part.map(() => '(?, ?, ?, ?)').join(', ')} ON CONFLICT (site_id, subject_key) DO NOTHING RETURNING subject_key`,
          params,
        );
        for (const r of created) this.created.add(`${siteId}\u0000${r.subject_key}`);
        const rows = await this.tx.all<{ subject_key: string; profile_id: string }>(`SELECT subject_key, profile_id FROM subjects WHERE site_id = ? AND subject_key IN (${part.map(() => '?').join(', ')})`, [siteId, ...part]);
        for (const r of rows) this.profiles.set(`${siteId}\u0000${r.subject_key}`, r.profile_id);
      }
    }
  }

  /** WRITE_ITEM_SQL for many rows of distinct items (its 8 params each), a few per statement. */
  private async writeItems(rows: readonly Param[][]): Promise<void> {
    for (const part of powerOfTwoParts(rows, 128)) await this.tx.run(writeItemsSql(part.length), part.flat());
  }

  /**
   * A record patch: last-write-wins by consentAt (equal: the later call wins); absent fields are
   * kept. Audited like every consent input (action `record`, the fields it sets as JSON in
   * `message`), whether or not it wins.
   */
  async patch(p: RecordPatch): Promise<void> {
    const key = subjectKey(p.subject);
    await this.ensureSubject(p.siteId, key);
    const rec = await this.tx.get<RecordRow>('SELECT consent_at, tcf_string, gcm, consent_type, geo_country FROM consent_records WHERE site_id = ? AND subject_key = ?', [p.siteId, key]);
    const storedAt = num(rec?.consent_at);
    const applied = storedAt === null || p.consentAt >= storedAt;
    const fields = JSON.stringify({ tcfString: p.tcfString, gcm: p.gcm, consentType: p.consentType, geoCountry: p.geoCountry });
    const fieldsHash = createHash('sha256').update(fields).digest('hex');
    const row: AuditColumns = {
      site_id: p.siteId,
      subject_key: key,
      action: 'record',
      item: null,
      consent_at: p.consentAt,
      valid_until: null,
      message: storableText(fields),
      source: storableText(p.source),
      identification: null,
      identification_type: null,
      imported_at: this.now,
      api_key_id: p.apiKeyId === undefined ? null : storableText(p.apiKeyId),
      payload_hash: p.payloadHash ?? fieldsHash,
      valid: 1,
      invalid_reason: null,
      applied: applied ? 1 : 0,
      dedup_key: createHash('sha256').update(JSON.stringify(['record', p.siteId, key, p.consentAt, fieldsHash])).digest('hex'),
      attributes: auditAttributesJson(p.attributes) ?? null,
    };
    const appended = await appendAudit(this.tx, this.head, row);
    // The same patch again changes nothing (and is not audited twice).
    if (appended === undefined) return;
    this.head = appended.hash;
    if (!applied) return;
    const pick = (v: string | null | undefined, old: string | null | undefined): string | null => (v === undefined ? (old ?? null) : v === null ? null : storableText(v));
    await this.tx.run(
      `INSERT INTO consent_records (site_id, subject_key, version, tcf_string, gcm, consent_type, source, geo_country, consent_at, updated_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (site_id, subject_key) DO UPDATE SET tcf_string = excluded.tcf_string, gcm = excluded.gcm, consent_type = excluded.consent_type,
         source = excluded.source, geo_country = excluded.geo_country, consent_at = excluded.consent_at`,
      [
        p.siteId,
        key,
        pick(p.tcfString, rec?.tcf_string),
        p.gcm === undefined ? (rec?.gcm ?? null) : gcmText(p.gcm),
        pick(p.consentType, rec?.consent_type),
        storableText(p.source),
        pick(p.geoCountry, rec?.geo_country),
        p.consentAt,
        this.now,
      ],
    );
  }

  /**
   * Expires one invalid consent event (seed bloomreach-tracking-consent.txt: "you can expire the
   * invalid consent events to restore the customer's previous consent status"): an `expire` audit
   * row naming its seq, then the item recomputed from its log by the replay (src/store/replay.ts,
   * the same code `audit verify` runs), so the previous state comes back exactly, or the item goes
   * when the event was its only input. Expiring twice: the row is a duplicate, nothing changes.
   * `index` names the request's entry in errors.
   */
  async expireEvent(siteId: string, seq: number, index: number, meta: ExpireMeta): Promise<{ seq: number; expired: boolean; auditSeq: number }> {
    const path = `seqs.${index}`;
    const ev = await this.tx.get<{ site_id: string; subject_key: string; action: string; item: string | null; valid: unknown }>('SELECT site_id, subject_key, action, item, valid FROM audit_log WHERE seq = ?', [seq]);
    if (ev === undefined || ev.site_id !== siteId) throw new NotFoundError(`${path}: no audit row ${seq} in this site`, { details: { issues: [{ path, message: 'not found' }] } });
    if ((ev.action !== 'accept' && ev.action !== 'reject') || ev.item === null) {
      throw new ValidationError(`${path}: audit row ${seq} is not a consent event (action ${ev.action})`, { details: { issues: [{ path, message: 'not a consent event' }] } });
    }
    if (Number(ev.valid) === 1) throw new ValidationError(`${path}: audit row ${seq} is a valid event; only invalid events are expired`, { details: { issues: [{ path, message: 'a valid event' }] } });
    const key = ev.subject_key;
    const item = ev.item;
    const dedup = sha256(JSON.stringify(['expire', seq]));
    const done = await this.tx.get<{ seq: unknown }>('SELECT seq FROM audit_log WHERE dedup_key = ?', [dedup]);
    if (done !== undefined) return { seq, expired: false, auditSeq: Number(done.seq) };
    await this.capture(siteId, key);
    const auditSeq = await this.appendOwn(() => ({
      site_id: siteId,
      subject_key: key,
      action: 'expire',
      item,
      consent_at: null,
      valid_until: null,
      message: String(seq),
      source: storableText(meta.source ?? 'api'),
      identification: null,
      identification_type: null,
      imported_at: this.now,
      api_key_id: meta.apiKeyId === undefined ? null : storableText(meta.apiKeyId),
      payload_hash: sha256(`expire:${seq}`),
      valid: 1,
      invalid_reason: null,
      applied: 1,
      dedup_key: dedup,
      attributes: null,
    }));
    const rows = await this.tx.all<ReplayDbRow>(`SELECT ${REPLAY_COLUMNS} FROM audit_log WHERE site_id = ? AND subject_key = ? AND item = ? ORDER BY seq`, [siteId, key, item]);
    const { state, problems } = replayAudit(rows.map(replayRowOf));
    if (problems.length > 0) throw new InternalError(`the audit log of ${key} ${item} does not replay: seq ${problems[0]!.seq} ${problems[0]!.detail}`);
    const now = state.item(siteId, key, item);
    if (now === undefined) await this.tx.run('DELETE FROM consent_items WHERE site_id = ? AND subject_key = ? AND item = ?', [siteId, key, item]);
    else {
      await this.tx.run(
        WRITE_ITEM_SQL,
        [siteId, key, item, now.status, now.consentAt, now.validUntil, now.source, now.auditSeq],
      );
    }
    return { seq, expired: true, auditSeq };
  }

  /** Seqs of a subject's invalid events of one item not yet expired, oldest first (at most `limit`). */
  async invalidEvents(siteId: string, key: string, item: string, limit: number): Promise<number[]> {
    const rows = await this.tx.all<{ seq: unknown }>(
      `SELECT a.seq FROM audit_log a WHERE a.site_id = ? AND a.subject_key = ? AND a.item = ? AND a.valid = 0 AND a.action IN ('accept', 'reject')
         AND NOT EXISTS (SELECT 1 FROM audit_log e WHERE e.site_id = a.site_id AND e.subject_key = a.subject_key AND e.action = 'expire' AND e.message = CAST(a.seq AS TEXT))
       ORDER BY a.seq LIMIT ?`,
      [siteId, key, item, limit],
    );
    return rows.map((r) => Number(r.seq));
  }

  /**
   * Compares every touched subject's view with its view before; for each profile that changed,
   * bumps its subjects' versions, then hands each changed subject to onChange and NOTIFY.
   */
  async finish(): Promise<ConsentChange[]> {
    // Every subject of a profile sees the same view: load it once per profile.
    const afterByKey = new Map<string, ProfileView>();
    const afterByProfile = new Map<string, ProfileView>();
    const changed: { siteId: string; key: string; before: ProfileView | undefined; after: ProfileView }[] = [];
    // Many subjects (an import's chunk): their views in a few queries; a few: one query each.
    const loaded = new Map<string, ProfileView | undefined>();
    if (this.before.size >= PREFETCH_FROM) {
      const bySite = new Map<string, string[]>();
      for (const { siteId, key } of this.before.values()) bySite.set(siteId, [...(bySite.get(siteId) ?? []), key]);
      for (const [siteId, keys] of bySite) for (const [k, v] of await loadProfiles(this.tx, siteId, keys, this.now)) loaded.set(`${siteId}\u0000${k}`, v);
    }
    for (const [id, { siteId, key, view: before }] of this.before) {
      let after = afterByKey.get(id);
      if (after === undefined) {
        after = loaded.has(id) ? loaded.get(id) : await loadProfile(this.tx, siteId, key, this.now);
        if (after === undefined) continue;
        for (const m of after.linked) afterByKey.set(`${siteId}\u0000${subjectKey(m)}`, after);
      }
      if (viewKey(before) === viewKey(after)) continue;
      afterByProfile.set(`${siteId}\u0000${after.profileId}`, after);
      changed.push({ siteId, key, before, after });
    }
    const versions = new Map<string, number>();
    for (const [id, after] of afterByProfile) versions.set(id, after.version + 1);
    const changes: ConsentChange[] = [];
    const versionRows: Param[][] = [];
    for (const { siteId, key, before, after } of changed) {
      const version = versions.get(`${siteId}\u0000${after.profileId}`)!;
      versionRows.push([siteId, key, version, this.now]);
      const items = Object.values(after.items).filter((s) => {
        const was = before?.items[s.item];
        return was === undefined || itemKey(was) !== itemKey(s);
      });
      const recordChanged = (before === undefined ? EMPTY_RECORD : recordKey(before)) !== recordKey(after);
      changes.push({ siteId, subject: parseSubjectKey(key), version, items, recordChanged, at: this.now });
    }
    await writeVersions(this.tx, versionRows);
    if (this.onChanges !== undefined) await this.onChanges(this.tx, changes);
    else if (this.onChange !== undefined) for (const change of changes) await this.onChange(this.tx, change);
    await notifyChanges(this.tx, this.engine, changes.map((c) => ({ siteId: c.siteId, subjectKey: subjectKey(c.subject) })));
    return changes;
  }
}

/**
 * Migration 6 (src/store/migrations.ts): links were not audited before it, so a profile joined
 * then could not replay (src/store/replay.ts) and `audit verify` would report it. Once, for what
 * the subjects table holds at that moment, the links are written to the log as action `link` with
 * source `migration`: per profile of several subjects, its first user (or first visitor) linked to
 * each other subject, users first (the order the replay never refuses), then a row of its own for
 * each lone subject the log does not name. The log then says honestly what it knows: "these
 * subjects shared a profile when links began to be audited", not when or why they were joined.
 */
export async function backfillLinkAudit(tx: Queryable, engine: Db['engine'], now: number): Promise<number> {
  await lockAuditChain(tx, engine);
  let head = await chainHeadHash(tx);
  let written = 0;
  const append = async (siteId: string, a: string, b: string): Promise<void> => {
    const out = await appendAudit(tx, head, linkAuditRow(siteId, a, b, 'migration', head, now));
    if (out === undefined) throw new InternalError('a backfilled link row collided with an existing dedup key');
    head = out.hash;
    written++;
  };
  const PAGE = 500;
  for (let after: [string, string] | undefined; ; ) {
    const profiles = await tx.all<{ site_id: string; profile_id: string }>(
      `SELECT site_id, profile_id FROM subjects ${after === undefined ? '' : 'WHERE (site_id, profile_id) > (?, ?)'} GROUP BY site_id, profile_id HAVING COUNT(*) > 1 ORDER BY site_id, profile_id LIMIT ?`,
      [...(after ?? []), PAGE],
    );
    for (const p of profiles) {
      const members = (await tx.all<{ subject_key: string }>('SELECT subject_key FROM subjects WHERE site_id = ? AND profile_id = ? ORDER BY subject_key', [p.site_id, p.profile_id])).map((r) => r.subject_key);
      const ordered = [...members.filter((k) => k.startsWith('user:')), ...members.filter((k) => !k.startsWith('user:'))];
      const [anchor, ...rest] = ordered;
      for (const k of rest) await append(p.site_id, anchor!, k);
    }
    const last = profiles[profiles.length - 1];
    if (profiles.length < PAGE || last === undefined) break;
    after = [last.site_id, last.profile_id];
  }
  for (let after: [string, string] | undefined; ; ) {
    const lone = await tx.all<{ site_id: string; subject_key: string }>(
      `SELECT s.site_id, s.subject_key FROM subjects s
       WHERE ${after === undefined ? '' : '(s.site_id, s.subject_key) > (?, ?) AND'}
         NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.site_id = s.site_id AND a.subject_key = s.subject_key)
         AND NOT EXISTS (SELECT 1 FROM subjects t WHERE t.site_id = s.site_id AND t.profile_id = s.profile_id AND t.subject_key <> s.subject_key)
       ORDER BY s.site_id, s.subject_key LIMIT ?`,
      [...(after ?? []), PAGE],
    );
    for (const r of lone) await append(r.site_id, r.subject_key, r.subject_key);
    const last = lone[lone.length - 1];
    if (lone.length < PAGE || last === undefined) break;
    after = [last.site_id, last.subject_key];
  }
  return written;
}

export function createConsentStore(db: Db, opts: ConsentStoreOptions = {}): ConsentStore {
  const time = opts.clock ?? systemClock;

  function committed(changes: ConsentChange[]): void {
    if (changes.length === 0 || opts.afterCommit === undefined) return;
    try {
      opts.afterCommit(changes);
    } catch (err) {
      opts.onAfterCommitError?.(err);
    }
  }

  return {
    async apply(inputs, patches = []) {
      if (inputs.length === 0 && patches.length === 0) return [];
      inputs.forEach(checkInput);
      patches.forEach((p, i) => {
        checkSubject(p.subject, `patches.${i}.subject`);
        if (!isTime(p.consentAt)) throw new ValidationError(`patches[${i}].consentAt: invalid`, { details: { issues: [{ path: `patches.${i}.consentAt`, message: 'invalid' }] } });
      });
      const now = time.now();
      const { outcomes, changes } = await db.transaction(async (tx) => {
        const w = new Writer(tx, db.engine, now, opts);
        await w.start(true);
        const outcomes: InputOutcome[] = [];
        if (inputs.length >= PREFETCH_FROM) await w.prefetchItems(inputs);
        if (inputs.length >= (opts.bulkFrom ?? PREFETCH_FROM)) {
          // Runs of inputs that link nothing go in bulk; an input that links (profiles merge, link
          // rows join the chain) goes alone, between them, in its place.
          for (let i = 0; i < inputs.length; ) {
            if ((inputs[i]!.links?.length ?? 0) > 0) {
              outcomes.push(await w.input(inputs[i]!));
              i++;
              continue;
            }
            let j = i;
            while (j < inputs.length && (inputs[j]!.links?.length ?? 0) === 0) j++;
            outcomes.push(...(await w.inputsUnlinked(inputs.slice(i, j))));
            i = j;
          }
        } else for (const input of inputs) outcomes.push(await w.input(input));
        for (const p of patches) await w.patch(p);
        return { outcomes, changes: await w.finish() };
      });
      committed(changes);
      return outcomes;
    },

    async read(siteId, subject, now) {
      // An id that could never have been stored has no record (and is never sent to the engine).
      if (idProblem(subject.id) !== undefined) return undefined;
      const view = await loadProfile(db, siteId, subjectKey(subject), now ?? time.now());
      if (view === undefined) return undefined;
      const { profileId: _profileId, ...rest } = view;
      return { siteId, subject, ...rest };
    },

    async expire(siteId, target, meta = {}) {
      const bad = (path: string, message: string): never => {
        throw new ValidationError(`${path}: ${message}`, { details: { issues: [{ path, message }] } });
      };
      if ('seqs' in target) {
        if (target.seqs.length === 0 || target.seqs.length > MAX_EXPIRE) bad('seqs', `1 to ${MAX_EXPIRE} audit seqs`);
        target.seqs.forEach((q, i) => {
          if (!Number.isSafeInteger(q) || q < 1) bad(`seqs.${i}`, 'an audit seq (a positive integer)');
        });
      } else {
        checkSubject(target.subject, 'subject');
        if (typeof target.item !== 'string' || target.item === '') bad('item', 'required');
      }
      const now = time.now();
      const { result, changes } = await db.transaction(async (tx) => {
        const w = new Writer(tx, db.engine, now, opts);
        await w.start(true);
        let seqs: readonly number[];
        let more = false;
        if ('seqs' in target) seqs = target.seqs;
        else {
          const found = await w.invalidEvents(siteId, subjectKey(target.subject), storableText(target.item), MAX_EXPIRE + 1);
          more = found.length > MAX_EXPIRE;
          seqs = found.slice(0, MAX_EXPIRE);
        }
        const events: ExpireResult['events'] = [];
        const seen = new Set<number>();
        for (const [i, seq] of seqs.entries()) {
          // A seq named twice is expired once (and answered once).
          if (seen.has(seq)) continue;
          seen.add(seq);
          events.push(await w.expireEvent(siteId, seq, i, meta));
        }
        return { result: { events, more }, changes: await w.finish() };
      });
      committed(changes);
      return result;
    },

    async link(siteId, a, b) {
      checkSubject(a, 'a');
      checkSubject(b, 'b');
      const now = time.now();
      const { result, changes } = await db.transaction(async (tx) => {
        const w = new Writer(tx, db.engine, now, opts);
        await w.start(false);
        const result = await w.link(siteId, a, b);
        return { result, changes: await w.finish() };
      });
      committed(changes);
      return result;
    },
  };
}
