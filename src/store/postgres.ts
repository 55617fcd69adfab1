import { createHash } from 'node:crypto';
import pg from 'pg';
import { toPgPlaceholders, type Db, type Param, type Queryable, type Row } from './db.ts';

// int8 (bigint, our millisecond timestamps and sequence numbers) as JS numbers: every value we
// store is far below 2^53. https://node-postgres.com/features/types
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Converted statements by source text; the store's statements are a small fixed set. */
const converted = new Map<string, { name: string | undefined; text: string }>();
const MAX_CONVERTED = 1_000;
/**
 * Statements with more parameters are bulk statements whose text varies with the row count (the
 * consent store's prefetch IN list): each runs once per chunk, so preparing every variant on every
 * connection would cost more server memory than it saves.
 */
const MAX_PREPARED_PARAMS = 64;

/**
 * A query config for `sql`. A single statement with parameters gets a name, so each connection
 * prepares it once and then only binds and executes it (the parse and plan were a large part of
 * each round trip of an import). Multi-statement scripts (migrations), statements without
 * parameters and bulk statements stay unnamed. https://node-postgres.com/features/queries#prepared-statements
 */
export function statement(sql: string, params: readonly Param[]): pg.QueryConfig {
  let c = converted.get(sql);
  if (c === undefined) {
    const text = toPgPlaceholders(sql);
    const name = params.length > 0 && params.length <= MAX_PREPARED_PARAMS && !sql.includes(';') ? `tw_${createHash('sha256').update(text).digest('hex').slice(0, 24)}` : undefined;
    c = { name, text };
    if (converted.size < MAX_CONVERTED) converted.set(sql, c);
  }
  return c.name === undefined ? { text: c.text, values: params as unknown[] } : { name: c.name, text: c.text, values: params as unknown[] };
}

/**
 * PostgreSQL through a pg Pool (https://node-postgres.com/apis/pool), for several Tagwarden
 * instances on one database. Each transaction holds one pooled connection.
 */
export function openPostgres(url: string, options: { max?: number } = {}): Db & { pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);

  function on(client: pg.Pool | pg.PoolClient): Queryable {
    const exec = (sql: string, params: readonly Param[]): Promise<pg.QueryResult> => client.query(statement(sql, params));
    return {
      async all<T extends Row = Row>(sql: string, params: readonly Param[] = []) {
        return (await exec(sql, params)).rows as T[];
      },
      async get<T extends Row = Row>(sql: string, params: readonly Param[] = []) {
        return (await exec(sql, params)).rows[0] as T | undefined;
      },
      async run(sql: string, params: readonly Param[] = []) {
        return (await exec(sql, params)).rowCount ?? 0;
      },
    };
  }

  let closed = false;
  return {
    engine: 'postgres',
    pool,
    ...on(pool),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(on(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
