import pg from 'pg';
import { toPgPlaceholders, type Db, type Param, type Queryable, type Row } from './db.ts';

// int8 (bigint, our millisecond timestamps and sequence numbers) as JS numbers: every value we
// store is far below 2^53. https://node-postgres.com/features/types
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * PostgreSQL through a pg Pool (https://node-postgres.com/apis/pool), for several Tagwarden
 * instances on one database. Each transaction holds one pooled connection.
 */
export function openPostgres(url: string, options: { max?: number } = {}): Db & { pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);

  function on(client: pg.Pool | pg.PoolClient): Queryable {
    return {
      async all<T extends Row = Row>(sql: string, params: readonly Param[] = []) {
        return (await client.query(toPgPlaceholders(sql), params as unknown[])).rows as T[];
      },
      async get<T extends Row = Row>(sql: string, params: readonly Param[] = []) {
        return (await client.query(toPgPlaceholders(sql), params as unknown[])).rows[0] as T | undefined;
      },
      async run(sql: string, params: readonly Param[] = []) {
        return (await client.query(toPgPlaceholders(sql), params as unknown[])).rowCount ?? 0;
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
