import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import type { Db, Param, Queryable, Row } from './db.ts';

/**
 * The embedded engine: one SQLite file through node:sqlite (https://nodejs.org/api/sqlite.html),
 * in WAL mode so readers do not wait for the writer (https://sqlite.org/wal.html). Durability
 * (https://sqlite.org/pragma.html#pragma_synchronous): `process` (the default) runs
 * `synchronous=NORMAL`, where a committed transaction is in the WAL file, in the OS's hands, before
 * the commit returns, so it survives the process being killed (SIGKILL, a crash) but not the machine
 * losing power before the OS writes it out; `power` runs `synchronous=FULL`, one fsync per commit,
 * which survives that too. node:sqlite is synchronous (an fsync blocks the event loop); the async
 * surface matches the PostgreSQL driver, and transactions are queued so only one runs at a time.
 */
export function openSqlite(path: string, durability: 'process' | 'power' = 'process'): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  // A second process on the same file (the CLI while the server runs, workers, another opener of a
  // new file) waits instead of failing. First: the switch to WAL below needs the file's lock too
  // (test/sqlite-open-locked.test.ts).
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${durability === 'power' ? 'FULL' : 'NORMAL'}`);
  db.exec('PRAGMA foreign_keys = ON');
  // 64 MiB of page cache (the default is 2 MiB): the audit log's dedup index takes random keys, and
  // with a small cache a large import spends most of its time re-reading index pages.
  db.exec('PRAGMA cache_size = -65536');

  const statements = new Map<string, ReturnType<DatabaseSync['prepare']>>();
  function prepare(sql: string): ReturnType<DatabaseSync['prepare']> {
    let s = statements.get(sql);
    if (s === undefined) {
      s = db.prepare(sql);
      // Cached: the store runs a small fixed set of statements; the bound only guards a bug.
      if (statements.size < 500) statements.set(sql, s);
    }
    return s;
  }

  const q: Queryable = {
    all<T extends Row = Row>(sql: string, params: readonly Param[] = []) {
      return Promise.resolve(prepare(sql).all(...(params as SQLInputValue[])) as T[]);
    },
    get<T extends Row = Row>(sql: string, params: readonly Param[] = []) {
      return Promise.resolve(prepare(sql).get(...(params as SQLInputValue[])) as T | undefined);
    },
    run(sql: string, params: readonly Param[] = []) {
      return Promise.resolve(Number(prepare(sql).run(...(params as SQLInputValue[])).changes));
    },
  };

  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  return {
    engine: 'sqlite',
    ...q,
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const run = async (): Promise<T> => {
        // IMMEDIATE takes the write lock at once: no upgrade deadlock with another process.
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(q);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          if (db.isTransaction) db.exec('ROLLBACK');
          throw err;
        }
      };
      const next = queue.then(run, run);
      queue = next.catch(() => undefined);
      return next;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      db.close();
    },
  };
}
