/**
 * The delivery journal (issue 11; DESIGN.md, Delivery: "a hit is made durable before its 2xx"):
 * what an acknowledged hit becomes in the store, so that a crash or a restart loses nothing that
 * was answered 2xx. Storage only: what a payload holds, and when to call what, is the delivery's
 * business (this module knows no HTTP and no policy).
 *
 * Two tables:
 * - `journal_hits`: one row per acknowledged event, its `payload` (the canonical event and what its
 *   decision needs, as JSON text) and its `owner`, the instance that answered it or took it over,
 *   which holds it until `lease_until` and renews the lease while it runs.
 * - `journal_work`: one row per (hit × destination) that did not finish at once: `waiting` (its
 *   next attempt at `not_before`, which a restart never brings forward), `held` (waiting for
 *   consent to become known) or `dead` (given up, with the reason, attempts, last status and a
 *   scrubbed excerpt of the vendor's answer).
 *
 * A hit with no work rows (`tracked = 0`) is, for every destination, either finished or in the
 * owner's memory: after a crash all its destinations are resumed (at least once: a destination
 * that had delivered may see it again, with the same event id to deduplicate on). Once any
 * destination of a hit needs a work row, the owner tracks the hit (`tracked = 1`): its work rows
 * then say all that is left, and a destination without one has finished. A hit whose destinations
 * have all finished is deleted (`finish`): delivered rows do not accumulate. Dead rows stay, with
 * their hit, until replayed or purged.
 *
 * Times are integer milliseconds since the epoch; the caller's clock supplies them.
 */
import { powerOfTwoParts } from './parts.ts';
import type { Db, Param, Queryable } from './db.ts';
import { InternalError } from '../errors.ts';

export interface NewHit {
  siteId: string;
  receivedAt: number;
  /** JSON text; its length (UTF-16 units) is what `bytes` counts. */
  payload: string;
}

export interface JournalHit extends NewHit {
  id: number;
  owner: string;
  leaseUntil: number;
  tracked: boolean;
}

export type WorkState = 'waiting' | 'held' | 'dead';
export const WORK_STATES: readonly WorkState[] = ['waiting', 'held', 'dead'];

export interface WorkRow {
  hitId: number;
  destinationId: string;
  state: WorkState;
  /** Earliest next attempt (waiting), the hold's deadline (held), when it died (dead). */
  notBefore: number;
  attempts: number;
  firstAttemptAt: number | null;
  reason: string | null;
  /** The error's TW_ERR_* code (docs/errors.md) for a retry or a dead letter; null otherwise. */
  code: string | null;
  lastStatus: number | null;
  /** Start of the vendor's last answer, secrets masked and personal data scrubbed by the sender. */
  excerpt: string | null;
  updatedAt: number;
}

export interface ClaimedHit {
  hit: JournalHit;
  work: WorkRow[];
}

export interface DeadFilter {
  siteId: string;
  /** One hit's dead letters (with `destinationId`: one dead letter). */
  hitId?: number;
  destinationId?: string;
  /** Only rows that died at or after this time. */
  since?: number;
  /** Only rows that died before this time. */
  before?: number;
  reason?: string;
  limit?: number;
}

/** Most rows per multi-row statement (a power of two: src/store/parts.ts): at most 11 parameters a row, far below both engines' limits. */
const CHUNK = 256;
/** Excerpts and reasons are bounded here too: a caller's bug must not grow the table without end. */
const MAX_EXCERPT = 1024;
const MAX_REASON = 200;

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

function chunks<T>(items: readonly T[]): T[][] {
  return powerOfTwoParts(items, CHUNK);
}

function clip(text: string | null, max: number): string | null {
  return text === null ? null : text.slice(0, max);
}

/**
 * Appends acknowledged hits in one transaction (group commit: the caller gathers every hit of an
 * event-loop turn) and returns their ids in order. Resolves only once committed: the caller answers
 * 2xx after that, never before.
 */
export async function appendHits(db: Db, hits: readonly NewHit[], owner: string, leaseUntil: number): Promise<number[]> {
  if (hits.length === 0) return [];
  return db.transaction(async (tx) => {
    const ids: number[] = [];
    for (const part of chunks(hits)) {
      const params: Param[] = [];
      for (const h of part) params.push(h.siteId, h.receivedAt, h.payload, h.payload.length, owner, leaseUntil);
      const insert = `INSERT INTO journal_hits (site_id, received_at, payload, bytes, owner, lease_until, tracked) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, 0)').join(', ')}`;
      if (db.engine === 'sqlite') {
        for (const id of await sqliteInsertedIds(tx, insert, params, part.length)) ids.push(id);
        continue;
      }
      const rows = await tx.all<{ id: number | bigint }>(`${insert} RETURNING id`, params);
      // The ids are drawn in VALUES order (PostgreSQL's identity sequence, one row after another),
      // but RETURNING's row order is not promised: sorted, they are the ids of `part` in order,
      // whatever other transactions drew meanwhile.
      for (const id of rows.map((r) => Number(r.id)).sort((a, b) => a - b)) ids.push(id);
    }
    return ids;
  });
}

/**
 * SQLite: the ids of the `n` rows one multi-row INSERT just added, without `RETURNING` (which made
 * node:sqlite build an object per row: a quarter of the append's CPU, docs/performance.md).
 * AUTOINCREMENT gives each new row a rowid above every rowid the table ever held
 * (https://sqlite.org/autoinc.html), and the statement inserts in VALUES order while this
 * transaction holds the write lock, so the rows are the `n` ids ending at last_insert_rowid(). The
 * count proves it: every older row is below the first new one, so `n` rows in that range are ours.
 */
async function sqliteInsertedIds(tx: Queryable, insert: string, params: readonly Param[], n: number): Promise<number[]> {
  await tx.run(insert, params);
  const range = await tx.get<{ last: number | bigint; n: number | bigint }>(
    'SELECT last_insert_rowid() AS last, (SELECT COUNT(*) FROM journal_hits WHERE id BETWEEN last_insert_rowid() - ? AND last_insert_rowid()) AS n',
    [n - 1],
  );
  const last = Number(range?.last ?? 0);
  if (Number(range?.n ?? 0) !== n) throw new InternalError(`journal: the ${n} rows inserted did not get consecutive ids ending at ${last}`);
  const ids = new Array<number>(n);
  for (let i = 0; i < n; i++) ids[i] = last - n + 1 + i;
  return ids;
}

/**
 * Writes (inserts or replaces) work rows and marks their hits tracked, in one transaction. The
 * caller passes, for a hit it starts tracking, a row for every destination not finished yet.
 */
export async function putWork(db: Db, rows: readonly WorkRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.transaction(async (tx) => {
    for (const part of chunks(rows)) {
      const params: Param[] = [];
      for (const r of part) {
        params.push(r.hitId, r.destinationId, r.state, r.notBefore, r.attempts, r.firstAttemptAt, clip(r.reason, MAX_REASON), clip(r.code, MAX_REASON), r.lastStatus, clip(r.excerpt, MAX_EXCERPT), r.updatedAt);
      }
      await tx.run(
        `INSERT INTO journal_work (hit_id, destination_id, state, not_before, attempts, first_attempt_at, reason, code, last_status, excerpt, updated_at)
         VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (hit_id, destination_id) DO UPDATE SET state = excluded.state, not_before = excluded.not_before, attempts = excluded.attempts,
           first_attempt_at = excluded.first_attempt_at, reason = excluded.reason, code = excluded.code, last_status = excluded.last_status, excerpt = excluded.excerpt, updated_at = excluded.updated_at`,
        params,
      );
    }
    const hitIds = [...new Set(rows.map((r) => r.hitId))];
    for (const part of chunks(hitIds)) await tx.run(`UPDATE journal_hits SET tracked = 1 WHERE id IN (${placeholders(part.length)}) AND tracked = 0`, part);
  });
}

/** A destination finished these hits (delivered, or decided not to send): their work rows go. */
export async function settleWork(db: Db, destinationId: string, hitIds: readonly number[]): Promise<void> {
  if (hitIds.length === 0) return;
  await db.transaction(async (tx) => {
    for (const part of chunks(hitIds)) {
      await tx.run(`DELETE FROM journal_work WHERE destination_id = ? AND hit_id IN (${placeholders(part.length)}) AND state <> 'dead'`, [destinationId, ...part]);
    }
  });
}

/**
 * Every destination of `owner` has finished these hits: their non-dead work rows go, and each hit
 * goes unless a dead row still refers to it (a dead letter keeps its event). Only hits `owner`
 * still holds are touched: a dead letter replayed (released to nobody) or a hit taken over by
 * another instance since is that one's work now, and deleting its rows would lose the replay.
 * Returns the hits deleted.
 */
export async function finishHits(db: Db, hitIds: readonly number[], owner: string): Promise<number> {
  if (hitIds.length === 0) return 0;
  return db.transaction(async (tx) => {
    let deleted = 0;
    for (const part of chunks(hitIds)) {
      const list = placeholders(part.length);
      // Most hits were never tracked: they have no work rows, so they go in one statement, and
      // the work rows and dead letters need looking at only when some of `part` remain.
      const untracked = await tx.run(`DELETE FROM journal_hits WHERE id IN (${list}) AND tracked = 0 AND owner = ?`, [...part, owner]);
      deleted += untracked;
      if (untracked === part.length) continue;
      await tx.run(
        `DELETE FROM journal_work WHERE hit_id IN (SELECT id FROM journal_hits WHERE id IN (${list}) AND owner = ?) AND state <> 'dead'`,
        [...part, owner],
      );
      deleted += await tx.run(
        `DELETE FROM journal_hits WHERE id IN (${list}) AND owner = ? AND NOT EXISTS (SELECT 1 FROM journal_work w WHERE w.hit_id = journal_hits.id)`,
        [...part, owner],
      );
    }
    return deleted;
  });
}

/** Extends the lease of every hit `owner` holds; the number of hits. */
export function renewLeases(db: Db, owner: string, leaseUntil: number): Promise<number> {
  return db.run('UPDATE journal_hits SET lease_until = ? WHERE owner = ?', [leaseUntil, owner]);
}

/**
 * Ends the lease of every hit `owner` holds (an instance stopping with work left): the next claim
 * of another instance takes them. The owner is kept, so its finishes, were any still to come,
 * still match. Returns the hits released.
 */
export function releaseLeases(db: Db, owner: string, now: number): Promise<number> {
  return db.run('UPDATE journal_hits SET lease_until = ? WHERE owner = ? AND lease_until > ?', [now, owner, now]);
}

/**
 * Takes over hits whose lease has lapsed (an instance that died, or this one before its restart),
 * oldest first, with their work rows: they become `owner`'s until `leaseUntil`. On PostgreSQL the
 * rows are selected `FOR UPDATE SKIP LOCKED`, so instances claiming at once take disjoint sets;
 * SQLite transactions are serialised, which gives the same. Hits holding only dead rows are left:
 * nothing remains to send for them until a replay.
 */
export async function claimLapsed(
  db: Db,
  opts: { owner: string; now: number; leaseUntil: number; limit: number; evenLive?: boolean; onlyReleased?: boolean },
): Promise<ClaimedHit[]> {
  const limit = Math.max(1, Math.floor(opts.limit));
  return db.transaction(async (tx) => {
    // Never the owner's own hits (it holds them already); `evenLive`: every other owner's, lapsed
    // or not (a single instance starting on its own SQLite file: any other owner was itself);
    // `onlyReleased`: only the hits nobody owns (replayed dead letters), whatever their lease (the
    // sole owner of a SQLite file, which does not renew leases).
    const who = opts.onlyReleased === true ? "owner = ''" : 'owner <> ? AND (lease_until <= ? OR ? = 1)';
    const params: Param[] = opts.onlyReleased === true ? [limit] : [opts.owner, opts.now, opts.evenLive === true ? 1 : 0, limit];
    const rows = await tx.all<HitRow>(
      `SELECT id, site_id, received_at, payload, owner, lease_until, tracked FROM journal_hits h
       WHERE ${who} AND (tracked = 0 OR EXISTS (SELECT 1 FROM journal_work w WHERE w.hit_id = h.id AND w.state <> 'dead'))
       ORDER BY id LIMIT ?${db.engine === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : ''}`,
      params,
    );
    if (rows.length === 0) return [];
    const ids = rows.map((r) => Number(r.id));
    const work = new Map<number, WorkRow[]>();
    for (const part of chunks(ids)) {
      const list = placeholders(part.length);
      await tx.run(`UPDATE journal_hits SET owner = ?, lease_until = ? WHERE id IN (${list})`, [opts.owner, opts.leaseUntil, ...part]);
      for (const w of await tx.all<WorkDbRow>(`SELECT * FROM journal_work WHERE hit_id IN (${list}) ORDER BY hit_id, destination_id`, part)) {
        const row = toWork(w);
        const list2 = work.get(row.hitId) ?? [];
        list2.push(row);
        work.set(row.hitId, list2);
      }
    }
    return rows.map((r) => ({ hit: { ...toHit(r), owner: opts.owner, leaseUntil: opts.leaseUntil }, work: work.get(Number(r.id)) ?? [] }));
  });
}

/** What the journal holds for a site: the bound on acknowledged-but-unfinished work reads it at start. */
export async function journalSize(db: Queryable, siteId: string): Promise<{ hits: number; bytes: number; dead: number }> {
  const h = await db.get<{ n: number | bigint; b: number | bigint | null }>('SELECT COUNT(*) AS n, SUM(bytes) AS b FROM journal_hits WHERE site_id = ?', [siteId]);
  const d = await db.get<{ n: number | bigint }>(
    "SELECT COUNT(*) AS n FROM journal_work w JOIN journal_hits h ON h.id = w.hit_id WHERE h.site_id = ? AND w.state = 'dead'",
    [siteId],
  );
  return { hits: Number(h?.n ?? 0), bytes: Number(h?.b ?? 0), dead: Number(d?.n ?? 0) };
}

// --- dead letters -------------------------------------------------------------------------------

export interface DeadLetter extends WorkRow {
  siteId: string;
  receivedAt: number;
  payload: string;
}

function deadWhere(f: DeadFilter): { sql: string; params: Param[] } {
  const parts = ["w.state = 'dead'", 'h.site_id = ?'];
  const params: Param[] = [f.siteId];
  if (f.hitId !== undefined) {
    parts.push('w.hit_id = ?');
    params.push(f.hitId);
  }
  if (f.destinationId !== undefined) {
    parts.push('w.destination_id = ?');
    params.push(f.destinationId);
  }
  if (f.since !== undefined) {
    parts.push('w.not_before >= ?');
    params.push(f.since);
  }
  if (f.before !== undefined) {
    parts.push('w.not_before < ?');
    params.push(f.before);
  }
  if (f.reason !== undefined) {
    parts.push('w.reason = ?');
    params.push(f.reason);
  }
  return { sql: parts.join(' AND '), params };
}

/** Dead letters matching the filter, oldest death first (at most `limit`, default 100, at most 1,000). */
export async function listDead(db: Queryable, f: DeadFilter): Promise<DeadLetter[]> {
  const { sql, params } = deadWhere(f);
  const limit = Math.min(Math.max(1, Math.floor(f.limit ?? 100)), 1000);
  const rows = await db.all<WorkDbRow & { site_id: string; received_at: number | bigint; payload: string }>(
    `SELECT w.*, h.site_id, h.received_at, h.payload FROM journal_work w JOIN journal_hits h ON h.id = w.hit_id WHERE ${sql} ORDER BY w.not_before, w.hit_id, w.destination_id LIMIT ?`,
    [...params, limit],
  );
  return rows.map((r) => ({ ...toWork(r), siteId: r.site_id, receivedAt: Number(r.received_at), payload: r.payload }));
}

/**
 * Sends dead letters again: they become `waiting`, due at `now`, with their attempts reset, and
 * their hits are released (no owner, lease lapsed) so the next claim of any instance takes them. The replay
 * goes through the normal path, consent re-check included. Returns the rows replayed.
 */
export async function replayDead(db: Db, f: DeadFilter, now: number): Promise<number> {
  return db.transaction(async (tx) => {
    const { sql, params } = deadWhere(f);
    const limit = Math.min(Math.max(1, Math.floor(f.limit ?? 1000)), 10_000);
    const rows = await tx.all<{ hit_id: number | bigint; destination_id: string }>(
      `SELECT w.hit_id, w.destination_id FROM journal_work w JOIN journal_hits h ON h.id = w.hit_id WHERE ${sql} ORDER BY w.not_before LIMIT ?`,
      [...params, limit],
    );
    for (const r of rows) {
      await tx.run(
        "UPDATE journal_work SET state = 'waiting', not_before = ?, attempts = 0, first_attempt_at = NULL, reason = 'replayed', code = NULL, updated_at = ? WHERE hit_id = ? AND destination_id = ? AND state = 'dead'",
        [now, now, r.hit_id, r.destination_id],
      );
    }
    const hitIds = [...new Set(rows.map((r) => Number(r.hit_id)))];
    // Owned by nobody, lease lapsed: the next claim of any instance (the one that wrote the dead row
    // included) takes it.
    for (const part of chunks(hitIds)) await tx.run(`UPDATE journal_hits SET owner = '', lease_until = ?, tracked = 1 WHERE id IN (${placeholders(part.length)})`, [now, ...part]);
    return rows.length;
  });
}

/**
 * Deletes dead letters matching the filter (all of them, or the `limit` oldest deaths), and their
 * hits once nothing else refers to them. Returns the rows deleted.
 */
export async function purgeDead(db: Db, f: DeadFilter): Promise<number> {
  return db.transaction(async (tx) => {
    const { sql, params } = deadWhere(f);
    const limited = f.limit !== undefined;
    const rows = await tx.all<{ hit_id: number | bigint; destination_id: string }>(
      `SELECT w.hit_id, w.destination_id FROM journal_work w JOIN journal_hits h ON h.id = w.hit_id WHERE ${sql}${limited ? ' ORDER BY w.not_before, w.hit_id, w.destination_id LIMIT ?' : ''}`,
      limited ? [...params, Math.max(1, Math.floor(f.limit!))] : params,
    );
    for (const r of rows) await tx.run("DELETE FROM journal_work WHERE hit_id = ? AND destination_id = ? AND state = 'dead'", [r.hit_id, r.destination_id]);
    const hitIds = [...new Set(rows.map((r) => Number(r.hit_id)))];
    for (const part of chunks(hitIds)) {
      await tx.run(
        `DELETE FROM journal_hits WHERE id IN (${placeholders(part.length)}) AND tracked = 1 AND NOT EXISTS (SELECT 1 FROM journal_work w WHERE w.hit_id = journal_hits.id)`,
        part,
      );
    }
    return rows.length;
  });
}

// --- rows ---------------------------------------------------------------------------------------

interface HitRow {
  id: number | bigint;
  site_id: string;
  received_at: number | bigint;
  payload: string;
  owner: string;
  lease_until: number | bigint;
  tracked: number | bigint;
  [key: string]: unknown;
}

interface WorkDbRow {
  hit_id: number | bigint;
  destination_id: string;
  state: string;
  not_before: number | bigint;
  attempts: number | bigint;
  first_attempt_at: number | bigint | null;
  reason: string | null;
  code: string | null;
  last_status: number | bigint | null;
  excerpt: string | null;
  updated_at: number | bigint;
  [key: string]: unknown;
}

function toHit(r: HitRow): JournalHit {
  return {
    id: Number(r.id),
    siteId: r.site_id,
    receivedAt: Number(r.received_at),
    payload: r.payload,
    owner: r.owner,
    leaseUntil: Number(r.lease_until),
    tracked: Number(r.tracked) === 1,
  };
}

function toWork(r: WorkDbRow): WorkRow {
  return {
    hitId: Number(r.hit_id),
    destinationId: r.destination_id,
    // The table's CHECK constraint admits only WORK_STATES.
    state: r.state as WorkState,
    notBefore: Number(r.not_before),
    attempts: Number(r.attempts),
    firstAttemptAt: r.first_attempt_at === null ? null : Number(r.first_attempt_at),
    reason: r.reason,
    code: r.code,
    lastStatus: r.last_status === null ? null : Number(r.last_status),
    excerpt: r.excerpt,
    updatedAt: Number(r.updated_at),
  };
}
