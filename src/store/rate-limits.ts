import type { Db } from './db.ts';

/**
 * Rate limits shared by every instance on one store (docs/consent.md "Budget", docs/consent-api.md
 * "Rate limits"). Storage only: the rules (the sliding window, the token bucket) are the callers'
 * pure functions, handed in as `decide` / `step` and run inside the store's atomic section, so
 * there is one implementation of each rule whether its state is in memory or here.
 *
 * Grant logs (`rate_grants`): a name's grants are read and appended in ONE transaction under a
 * lock held only by that transaction: PostgreSQL `pg_advisory_xact_lock` keyed by schema and name
 * (two instances of one schema serialise; other names and schemas do not wait), SQLite
 * `BEGIN IMMEDIATE` (db.transaction: one writer per file, so every process on the file
 * serialises). The time is PostgreSQL's `clock_timestamp()` read under the lock: one clock for the
 * whole fleet, so clock skew between instances cannot shift anyone's window, and the times in the
 * log are in lock order. On SQLite every process is on one machine and reads the same system
 * clock: the caller's time is used (which lets tests drive it).
 *
 * Buckets (`rate_buckets`): one row per name and key, stepped in one short transaction: an upsert
 * that returns the row and holds its lock (PostgreSQL's row lock; SQLite's BEGIN IMMEDIATE), the
 * caller's maths, one UPDATE. Concurrent requests of one key queue on the row instead of retrying
 * (a compare-and-set loop would let a client with enough parallel requests starve its own
 * updates, and a limiter that gives up must let the request through).
 */

/** What `decide` sees: the latest grants of the name, newest first, and the time of the decision. */
export interface GrantLogView {
  /** At most `limit` grant times (ms), newest first. */
  newestFirst: number[];
  /** The time to decide at: the database's clock on PostgreSQL (`time: 'database'`), else the caller's. */
  now: number;
}

export interface GrantLogOptions {
  /** The log's name (one per shared budget, e.g. per upstream API key). */
  name: string;
  /** Grants the decision needs to see (the rule's limit). */
  limit: number;
  /** Grants older than this before the newest are deleted: the rule never looks further back. */
  windowMs: number;
  /**
   * `database`: PostgreSQL's clock_timestamp() (SQLite has no server clock: the caller's `now`);
   * `caller`: the `now` passed in (tests on PostgreSQL that drive time).
   */
  time: 'database' | 'caller';
}

/** Lock space of the grant logs' advisory locks (7240001 is the migrations'). */
const GRANT_LOCK_SPACE = 7240002;

/**
 * Under the name's lock: reads the latest `limit` grants, asks `decide` for the grant's time
 * (undefined: no grant), appends it, and forgets grants a window older than it. Resolves with the
 * view decided on and the time granted (if any); rejects when the store does.
 */
export async function takeGrant(db: Db, o: GrantLogOptions, now: number, decide: (view: GrantLogView) => number | undefined): Promise<{ view: GrantLogView; grantedAt: number | undefined }> {
  return db.transaction(async (tx) => {
    let at = now;
    if (db.engine === 'postgres') {
      await tx.run(`SELECT pg_advisory_xact_lock(${GRANT_LOCK_SPACE}, hashtext(current_schema() || ':' || CAST(? AS TEXT)))`, [o.name]);
      if (o.time === 'database') {
        const row = await tx.get<{ now: number }>('SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT) AS now');
        at = Number(row!.now);
      }
    }
    const rows = await tx.all<{ at: number }>('SELECT at FROM rate_grants WHERE name = ? ORDER BY at DESC LIMIT ?', [o.name, o.limit]);
    const view: GrantLogView = { newestFirst: rows.map((r) => Number(r.at)), now: at };
    const grantedAt = decide(view);
    if (grantedAt !== undefined) {
      await tx.run('INSERT INTO rate_grants (name, at) VALUES (?, ?)', [o.name, grantedAt]);
      // The newest grant always stays (the rule's clamp reads it); older than a window, none matters.
      await tx.run('DELETE FROM rate_grants WHERE name = ? AND at <= ?', [o.name, grantedAt - o.windowMs]);
    }
    return { view, grantedAt };
  });
}

/** A bucket as stored: `tokens` (fractional) computed at `at` (ms). */
export interface StoredBucket {
  tokens: number;
  at: number;
}

/**
 * One atomic step of the bucket `name`/`key`: `step` gets the stored state (undefined: none yet)
 * and returns the next state and the caller's result, which is written before the transaction
 * ends. Rejects when the store does.
 */
export async function stepBucket<R>(db: Db, name: string, key: string, step: (current: StoredBucket | undefined) => { next: StoredBucket; result: R }): Promise<R> {
  return db.transaction(async (tx) => {
    // Creates the row (version 0: no state yet) or touches it, which row-locks it on PostgreSQL
    // until the transaction ends, and returns it in the same statement.
    const row = await tx.get<{ tokens: number; at: number; version: number }>(
      'INSERT INTO rate_buckets (name, bucket_key, tokens, at, version) VALUES (?, ?, 0, 0, 0) ON CONFLICT (name, bucket_key) DO UPDATE SET version = rate_buckets.version RETURNING tokens, at, version',
      [name, key],
    );
    const current = row === undefined || Number(row.version) === 0 ? undefined : { tokens: Number(row.tokens), at: Number(row.at) };
    const { next, result } = step(current);
    await tx.run('UPDATE rate_buckets SET tokens = ?, at = ?, version = version + 1 WHERE name = ? AND bucket_key = ?', [next.tokens, next.at, name, key]);
    return result;
  });
}
