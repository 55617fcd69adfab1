/**
 * Announcing passed expiries. A grant may carry a `valid_until` (Bloomreach's `valid_until`, seed
 * bloomreach-tracking-consent.txt; a push's `validUntil`); once it passes, reads answer denied
 * (src/store/consent.ts, loadProfile) without any write. Nothing else would record the moment:
 * this sweep gives each such grant, once, an `expired` row in the audit chain and a
 * `consent.expired` webhook, and bumps the subject's version so caches and receivers see a change.
 *
 * - One transaction per batch: the audit rows, the webhook deliveries (the `onExpired` hook,
 *   default src/store/webhooks.ts enqueueForExpiry), the version bumps, the markers
 *   (`consent_items.expiry_noted_at`, migration 8) and the NOTIFYs commit together or not at all:
 *   an expiry is announced at least once (a failed batch is found again by the next sweep).
 * - Never twice: the batch runs under the audit chain's lock (serialising the sweepers of every
 *   instance on one PostgreSQL with each other and with consent writes), re-reads the markers
 *   after taking it, and the audit row's dedup key is (site, subject, item, valid_until), so even
 *   a marker lost to a direct edit produces no second row and no second delivery.
 * - A later write of the item (a new grant, a denial) clears the marker (consent.ts) and a grant
 *   replaced before its expiry was announced is not announced: the sweep reads the current row.
 * - A grant written when its valid_until had already passed is marked, not announced: it was never
 *   in force, and the write's own consent.changed said `expired: true`.
 * - The `expired` row is state-neutral: it writes no consent_items state (`applied` is 0); the
 *   item reads denied because of its valid_until alone. A replay of the log into state must skip it.
 */
import { createHash } from 'node:crypto';
import { appendAudit, chainHeadHash, lockAuditChain, type AuditColumns } from './audit.ts';
import { writeVersion } from './consent.ts';
import type { Db, Queryable } from './db.ts';
import { notifyChange } from './notify.ts';
import { parseSubjectKey, type ChangeHook, type ConsentChange, type SubjectRef } from './types.ts';
import { enqueueForExpiry } from './webhooks.ts';
import { every } from '../lib/every.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

/** The audit action of an announced expiry (state-neutral, see above). */
export const EXPIRED_ACTION = 'expired';
/** The audit source of the rows the sweep writes: no client sent them. */
export const EXPIRY_SOURCE = 'expiry';

export interface ExpiredItem {
  siteId: string;
  subject: SubjectRef;
  item: string;
  /** When it passed (the grant's valid_until): the audit row's consent_at. */
  validUntil: number;
  /** The grant's own consent time and source. */
  consentAt: number;
  source: string;
  /** The audit row of the grant that expired. */
  grantSeq: number;
  /** The `expired` audit row (null when an identical one already existed: nothing announced). */
  auditSeq: number | null;
}

export interface SweepResult {
  /** Every due item handled in this batch (announced, or marked because it already was). */
  expired: ExpiredItem[];
  /** Due grants that were written after their valid_until had passed: marked, not announced. */
  alreadyExpired: number;
  /** The changes announced (one per announced item), as handed to `onExpired`. */
  changes: ConsentChange[];
  /** Subjects whose reads changed (every subject of each profile concerned): forget them in caches. */
  subjects: { siteId: string; subjectKey: string }[];
  /** True when the batch was full: more may be due. */
  full: boolean;
}

export interface SweepOptions {
  now: number;
  /** Most items per transaction. */
  limit: number;
  /** Inside the transaction, per announced item; default: enqueue `consent.expired` deliveries. */
  onExpired?: ChangeHook;
}

interface DueRow {
  [key: string]: unknown;
  site_id: string;
  subject_key: string;
  item: string;
  consent_at: number;
  valid_until: number;
  source: string;
  audit_seq: number;
  /** When the grant was written (its audit row's imported_at). */
  granted_at: number | null;
}

// The terms of the partial index consent_items_expiry_due (migration 8), spelled as its predicate
// so both engines' planners use it.
const dueWhere = (t: string): string => `${t}status = 'granted' AND ${t}valid_until IS NOT NULL AND ${t}expiry_noted_at IS NULL AND ${t}valid_until <= ?`;

/** Same bytes for the same expiry on any instance: the audit row's dedup key. */
export function expiryDedupKey(siteId: string, subjectKey: string, item: string, validUntil: number): string {
  return createHash('sha256').update(JSON.stringify(['expired', siteId, subjectKey, item, validUntil])).digest('hex');
}

/**
 * One batch: the due grants (oldest expiry first), each audited, announced, versioned and marked,
 * in one transaction. Resolves after commit.
 */
export async function sweepExpired(db: Db, opts: SweepOptions): Promise<SweepResult> {
  const limit = Math.max(1, Math.floor(opts.limit));
  const onExpired = opts.onExpired ?? enqueueForExpiry;
  const none: SweepResult = { expired: [], alreadyExpired: 0, changes: [], subjects: [], full: false };
  // Outside a transaction and without the chain lock: most sweeps find nothing, and must not
  // queue behind consent writes to learn it.
  if ((await db.get(`SELECT 1 AS due FROM consent_items WHERE ${dueWhere('')} LIMIT 1`, [opts.now])) === undefined) return none;
  return db.transaction(async (tx) => {
    await lockAuditChain(tx, db.engine);
    // Read under the lock: what another instance announced meanwhile is marked by now.
    const due = await tx.all<DueRow>(
      `SELECT i.site_id AS site_id, i.subject_key AS subject_key, i.item AS item, i.consent_at AS consent_at, i.valid_until AS valid_until, i.source AS source, i.audit_seq AS audit_seq, a.imported_at AS granted_at
       FROM consent_items i LEFT JOIN audit_log a ON a.seq = i.audit_seq
       WHERE ${dueWhere('i.')} ORDER BY i.valid_until, i.site_id, i.subject_key, i.item LIMIT ?`,
      [opts.now, limit],
    );
    let head = await chainHeadHash(tx);
    const result: SweepResult = { expired: [], alreadyExpired: 0, changes: [], subjects: [], full: due.length === limit };
    const touched = new Set<string>();
    for (const r of due) {
      const validUntil = Number(r.valid_until);
      const grantSeq = Number(r.audit_seq);
      const consentAt = Number(r.consent_at);
      const mark = (): Promise<number> =>
        tx.run('UPDATE consent_items SET expiry_noted_at = ? WHERE site_id = ? AND subject_key = ? AND item = ? AND audit_seq = ?', [opts.now, r.site_id, r.subject_key, r.item, r.audit_seq]);
      // Written when its valid_until had already passed (an import of history, seed
      // bloomreach-tracking-consent.txt's third CSV row): it never was in force here, and its
      // consent.changed already said `expired: true`. Nothing passed while it was held.
      if (r.granted_at !== null && Number(r.granted_at) >= validUntil) {
        await mark();
        result.alreadyExpired++;
        continue;
      }
      const attributes = JSON.stringify({ grantSeq });
      const row: AuditColumns = {
        site_id: r.site_id,
        subject_key: r.subject_key,
        action: EXPIRED_ACTION,
        item: r.item,
        consent_at: validUntil,
        valid_until: validUntil,
        message: 'valid_until passed',
        source: EXPIRY_SOURCE,
        identification: null,
        identification_type: null,
        imported_at: opts.now,
        api_key_id: null,
        payload_hash: createHash('sha256').update(JSON.stringify(['expired', r.site_id, r.subject_key, r.item, validUntil, grantSeq])).digest('hex'),
        valid: 1,
        invalid_reason: null,
        applied: 0,
        dedup_key: expiryDedupKey(r.site_id, r.subject_key, r.item, validUntil),
        attributes,
      };
      const appended = await appendAudit(tx, head, row);
      await mark();
      const subject = parseSubjectKey(r.subject_key);
      const base = { siteId: r.site_id, subject, item: r.item, validUntil, consentAt, source: r.source, grantSeq };
      if (appended === undefined) {
        // Announced before (its marker was lost): marked again, announced never twice.
        result.expired.push({ ...base, auditSeq: null });
        continue;
      }
      head = appended.hash;
      const version = await bumpVersion(tx, r.site_id, r.subject_key, opts.now);
      const change: ConsentChange = {
        siteId: r.site_id,
        subject,
        version: version.version,
        items: [{ item: r.item, status: 'denied', consentAt, validUntil, source: r.source, expired: true }],
        recordChanged: false,
        at: opts.now,
      };
      await onExpired(tx, change);
      for (const key of version.members) {
        const id = `${r.site_id}\u0000${key}`;
        if (touched.has(id)) continue;
        touched.add(id);
        await notifyChange(tx, db.engine, r.site_id, key);
        result.subjects.push({ siteId: r.site_id, subjectKey: key });
      }
      result.expired.push({ ...base, auditSeq: appended.seq });
      result.changes.push(change);
    }
    return result;
  });
}

/**
 * Sets the subject's version one above its profile's highest (the rule of consent.ts: a merged
 * version only ever increases). Returns it with the profile's subjects, whose merged reads include
 * the item.
 */
async function bumpVersion(tx: Queryable, siteId: string, key: string, now: number): Promise<{ version: number; members: string[] }> {
  const rows = await tx.all<{ subject_key: string; version: number | null }>(
    `SELECT s.subject_key AS subject_key, r.version AS version FROM subjects s
     LEFT JOIN consent_records r ON r.site_id = s.site_id AND r.subject_key = s.subject_key
     WHERE s.site_id = ? AND s.profile_id = (SELECT profile_id FROM subjects WHERE site_id = ? AND subject_key = ?)`,
    [siteId, siteId, key],
  );
  const members = rows.map((r) => r.subject_key);
  if (!members.includes(key)) members.push(key);
  const version = rows.reduce((max, r) => Math.max(max, r.version === null ? 0 : Number(r.version)), 0) + 1;
  await writeVersion(tx, siteId, key, version, now);
  return { version, members: members.sort() };
}

export interface ExpirySweeperOptions {
  db: Db;
  /** Time of the sweeps (what has passed) and of their timer. Default: the system clock. */
  clock?: Clock;
  /** Between sweeps (config `api.expiry.sweepMs`). */
  intervalMs: number;
  /** Items per transaction (config `api.expiry.batchSize`). */
  batchSize: number;
  onExpired?: ChangeHook;
  /** After each commit that announced something: forget these subjects' cached consent. */
  onCommitted?: (result: SweepResult) => void;
  /** Errors of a sweep (database unavailable, …); the next sweep tries again. */
  onError?: (err: unknown) => void;
}

export interface ExpirySweeper {
  start(): void;
  /** Stops the timer and waits for a sweep in flight. */
  stop(): Promise<void>;
  /** Sweeps until a batch is not full (the timer's work; tests call it directly). Never throws. */
  runOnce(): Promise<SweepResult[]>;
}

/** Most batches one run goes through before yielding to the next tick (a backlog after downtime). */
const MAX_BATCHES_PER_RUN = 50;

export function createExpirySweeper(o: ExpirySweeperOptions): ExpirySweeper {
  const clock = o.clock ?? systemClock;
  let stopTimer: (() => void) | undefined;
  let current: Promise<unknown> | undefined;
  const report = (err: unknown): void => {
    try {
      o.onError?.(err);
    } catch {
      // a failing error handler must not stop the sweeps
    }
  };

  async function runOnce(): Promise<SweepResult[]> {
    const results: SweepResult[] = [];
    try {
      for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
        const r = await sweepExpired(o.db, { now: clock.now(), limit: o.batchSize, ...(o.onExpired === undefined ? {} : { onExpired: o.onExpired }) });
        results.push(r);
        if (r.subjects.length > 0) {
          try {
            o.onCommitted?.(r);
          } catch (err) {
            report(err);
          }
        }
        if (!r.full) break;
      }
    } catch (err) {
      report(err);
    }
    return results;
  }

  return {
    start() {
      if (stopTimer !== undefined) return;
      stopTimer = every(clock, o.intervalMs, () => {
        // One sweep at a time: a slow one is not overlapped by the next tick.
        if (current !== undefined) return;
        current = runOnce().finally(() => {
          current = undefined;
        });
      });
    },
    async stop() {
      stopTimer?.();
      stopTimer = undefined;
      await current;
    },
    runOnce,
  };
}
