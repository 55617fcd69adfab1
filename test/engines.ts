import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe } from 'vitest';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { POSTGRES_SKIPPED, TEST_DATABASE_URL } from './test-database.ts';

/**
 * Runs a suite against each store engine: SQLite in memory always, PostgreSQL when
 * TEST_DATABASE_URL is set (.ci/run sets it), each test file in its own fresh schema so files can
 * run in parallel. Without TEST_DATABASE_URL the PostgreSQL half is skipped with a visible message.
 */
export interface EngineUnderTest {
  name: 'sqlite' | 'postgres';
  /** A fresh, migrated database (its own schema on PostgreSQL); closed by the caller. */
  open(): Promise<Db>;
  /** The URL `open` connects to (for a second app instance on the same PostgreSQL). */
  url(): string;
}

const PG_URL = TEST_DATABASE_URL;

export function forEachEngine(title: string, suite: (engine: EngineUnderTest) => void): void {
  describe(`${title} [sqlite]`, () => {
    suite({ name: 'sqlite', open: () => openDb('sqlite::memory:'), url: () => 'sqlite::memory:' });
  });
  if (PG_URL === undefined) {
    // The default reporter does not show this title; test/global-setup.ts prints the notice once.
    describe.skip(`${title} [postgres] — ${POSTGRES_SKIPPED}`, () => undefined);
    return;
  }
  describe(`${title} [postgres]`, () => {
    const created: string[] = [];
    // Each file's schemas go when its suite is done (after its own afterAll hooks closed their pools).
    afterAll(async () => {
      if (created.length === 0) return;
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        for (const schema of created.splice(0)) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    });
    suite({
      name: 'postgres',
      open: async () => {
        const url = await freshSchemaUrl();
        created.push(lastSchema);
        return openDb(url);
      },
      url: () => lastUrl,
    });
  });
}

let lastUrl = '';
let lastSchema = '';

/** A new schema on the test database, and a URL whose connections use it. */
async function freshSchemaUrl(): Promise<string> {
  const schema = `tw_test_${randomBytes(6).toString('hex')}`;
  lastSchema = schema;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  const url = new URL(PG_URL!);
  url.searchParams.set('options', `-c search_path=${schema}`);
  lastUrl = url.toString();
  return lastUrl;
}
