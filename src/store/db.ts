/**
 * The one database seam both engines sit behind: SQL written once with `?` placeholders, run by an
 * embedded SQLite (node:sqlite, one file, WAL) or a PostgreSQL pool (pg). The store's logic lives
 * above this and is the same for both; tests run the same contract suite against each.
 *
 * What the SQL may use: the subset both engines share — `INSERT … ON CONFLICT … DO UPDATE`,
 * `RETURNING`, integer and text columns (timestamps as integer milliseconds, JSON as text), and
 * `?` placeholders (rewritten to `$1…` for PostgreSQL). Engine-specific statements (PostgreSQL's
 * advisory locks, LISTEN/NOTIFY) go through the `engine` check.
 */
export type Row = Record<string, unknown>;
export type Param = string | number | bigint | null | Uint8Array;

export interface Queryable {
  /** Rows of a statement (empty for statements that return none). */
  all<T extends Row = Row>(sql: string, params?: readonly Param[]): Promise<T[]>;
  /** First row or undefined. */
  get<T extends Row = Row>(sql: string, params?: readonly Param[]): Promise<T | undefined>;
  /** Runs a statement; the number of rows it changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
}

export interface Db extends Queryable {
  readonly engine: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Transactions are serialised on SQLite (one writer) and isolated per pooled connection on
   * PostgreSQL. `fn` must use the Queryable it is given, not the Db.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `?` → `$1, $2, …` outside string literals. */
export function toPgPlaceholders(sql: string): string {
  let n = 0;
  let out = '';
  let quoted = false;
  for (const ch of sql) {
    if (ch === "'") quoted = !quoted;
    if (ch === '?' && !quoted) {
      n++;
      out += `$${n}`;
    } else {
      out += ch;
    }
  }
  return out;
}
