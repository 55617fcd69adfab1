import pg from 'pg';
import type { Db, Queryable } from './db.ts';
import { InternalError } from '../errors.ts';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.ts';
import { unrefTimer } from '../lib/every.ts';

/**
 * Cross-instance cache invalidation. On PostgreSQL the writing transaction NOTIFYs (delivered by
 * the server on commit only, so a rolled-back write never invalidates) and every instance
 * LISTENs on a dedicated connection. The payload carries the writer's schema: channels are
 * database-wide, and two deployments (or test files) in different schemas of one database must not
 * see each other's subjects. On SQLite there is no server to carry them: local invalidation comes
 * from the store's afterCommit, and the workers of one host (server.workers above 1) tell each
 * other through their supervisor (a ChangeRelay, src/cluster/worker-link.ts), so the feed is a no-op.
 */
export const CHANGE_CHANNEL = 'tagwarden_consent';

/** Call inside the transaction that changed the subject. */
export async function notifyChange(tx: Queryable, engine: Db['engine'], siteId: string, subjectKey: string): Promise<void> {
  if (engine !== 'postgres') return;
  await tx.run(`SELECT pg_notify('${CHANGE_CHANNEL}', json_build_array(current_schema(), CAST(? AS TEXT), CAST(? AS TEXT))::text)`, [siteId, subjectKey]);
}

/**
 * Consent changes carried between the processes of one host that share the store
 * (server.workers above 1): what this process committed goes out, what the others committed comes
 * in. Used on both engines (on PostgreSQL it only makes the workers of one host learn sooner).
 */
export interface ChangeRelay {
  publish(siteId: string, subjectKey: string): void;
  subscribe(onChange: (siteId: string, subjectKey: string) => void): void;
}

/**
 * notifyChange for many subjects, a few statements instead of one per subject (an import's chunk
 * changes hundreds): one notification each, as notifyChange sends them (listeners only forget
 * cached consent, so their order within the commit does not matter).
 */
export async function notifyChanges(tx: Queryable, engine: Db['engine'], list: readonly { siteId: string; subjectKey: string }[]): Promise<void> {
  if (engine !== 'postgres') return;
  if (list.length === 1) return notifyChange(tx, engine, list[0]!.siteId, list[0]!.subjectKey);
  for (let i = 0; i < list.length; i += 500) {
    const part = list.slice(i, i + 500);
    await tx.run(
      `SELECT pg_notify('${CHANGE_CHANNEL}', json_build_array(current_schema(), v.site_id, v.subject_key)::text) FROM (VALUES ${part.map(() => '(CAST(? AS TEXT), CAST(? AS TEXT))').join(', ')}) AS v(site_id, subject_key)`,
      part.flatMap((c) => [c.siteId, c.subjectKey]),
    );
  }
}

export interface ChangeFeed {
  close(): Promise<void>;
}

export interface ChangeFeedOptions {
  /**
   * Called after the listening connection was lost and re-established: notifications sent in
   * between are gone, so a cache must drop everything it holds.
   */
  onReset?: () => void;
  /** application_name of the listening connection (to tell it apart in pg_stat_activity). */
  applicationName?: string;
  /** First reconnect delay, doubled per failed attempt up to 5 s. */
  retryMs?: number;
  /** The reconnect timers' clock. Default: the system clock. */
  clock?: Clock;
}

const MAX_RETRY_MS = 5000;

/**
 * Starts listening; resolves once LISTEN is active (changes committed after that are seen).
 * Rejects when the first connection fails; later losses reconnect with backoff and call onReset.
 */
export async function startChangeFeed(db: Db, onChange: (siteId: string, subjectKey: string) => void, opts: ChangeFeedOptions = {}): Promise<ChangeFeed> {
  if (db.engine !== 'postgres') return { close: () => Promise.resolve() };
  const pool = (db as Db & { pool?: pg.Pool }).pool;
  const connectionString = pool?.options.connectionString;
  if (connectionString === undefined) throw new InternalError('startChangeFeed: a PostgreSQL Db from openPostgres (with its pool) is required');

  const minRetry = opts.retryMs ?? 250;
  let retry = minRetry;
  let closed = false;
  let current: pg.Client | undefined;
  const clock = opts.clock ?? systemClock;
  let timer: TimerHandle | undefined;
  // Clients already given up on: their late 'error'/'end' events must not schedule another reconnect.
  const retired = new WeakSet<pg.Client>();

  const retire = (c: pg.Client): void => {
    if (retired.has(c)) return;
    retired.add(c);
    if (current === c) current = undefined;
    c.end().catch(() => undefined);
  };

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString, application_name: opts.applicationName ?? 'tagwarden-change-feed' });
    let schema: string | undefined;
    // Only a connection that was listening reconnects; a failure while connecting is the
    // caller's (startChangeFeed rejects, or the scheduled attempt backs off and retries).
    const lost = (): void => {
      const wasListening = current === c;
      retire(c);
      if (wasListening) schedule();
    };
    // An 'error' without a listener would crash the process; both mean the connection is gone.
    c.on('error', lost);
    c.on('end', lost);
    c.on('notification', (msg) => {
      if (msg.channel !== CHANGE_CHANNEL || msg.payload === undefined) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(msg.payload);
      } catch {
        return;
      }
      if (!Array.isArray(parsed) || parsed.length !== 3) return;
      const [from, siteId, subjectKey] = parsed as unknown[];
      if (from !== schema || typeof siteId !== 'string' || typeof subjectKey !== 'string') return;
      onChange(siteId, subjectKey);
    });
    try {
      await c.connect();
      schema = (await c.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema;
      await c.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      retire(c);
      throw err;
    }
    if (closed) {
      retire(c);
      return;
    }
    current = c;
  };

  function schedule(): void {
    if (closed || timer !== undefined) return;
    const reconnect = (): void => {
      timer = undefined;
      connect().then(
        () => {
          retry = minRetry;
          if (!closed) opts.onReset?.();
        },
        () => {
          retry = Math.min(retry * 2, MAX_RETRY_MS);
          schedule();
        },
      );
    };
    // The feed alone must not keep a process alive that is otherwise done.
    timer = unrefTimer(clock.setTimeout(reconnect, retry));
  }

  await connect();
  return {
    async close() {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      const c = current;
      if (c !== undefined) {
        retired.add(c);
        current = undefined;
        await c.end().catch(() => undefined);
      }
    },
  };
}
