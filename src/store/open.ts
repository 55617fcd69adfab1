import { resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { Db } from './db.ts';
import { migrate } from './migrations.ts';
import { openPostgres } from './postgres.ts';
import { openSqlite } from './sqlite.ts';

/**
 * Opens the database `store.url` names and brings its schema up to date:
 * `sqlite:<path>` (relative to the working directory; `sqlite::memory:` for tests) or
 * `postgres://…` / `postgresql://…`. `durability` (SQLite): see openSqlite.
 */
export async function openDb(url: string, options: { durability?: 'process' | 'power' } = {}): Promise<Db> {
  let db: Db;
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new ConfigError('store.url: sqlite: needs a file path, e.g. sqlite:./data/tagwarden.db');
    db = openSqlite(path === ':memory:' ? path : resolve(path), options.durability ?? 'process');
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    db = openPostgres(url);
  } else {
    throw new ConfigError('store.url must start with sqlite: or postgres://');
  }
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}
