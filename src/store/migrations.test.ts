import { describe, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { toPgPlaceholders } from './db.ts';
import { migrate, MIGRATIONS } from './migrations.ts';

forEachEngine('store migrations', (engine) => {
  it('creates every table on a new database, records the versions, and is idempotent', async () => {
    const db = await engine.open();
    try {
      const versions = await db.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(versions.map((v) => Number(v.version))).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await migrate(db)).toEqual([]);
      for (const table of ['subjects', 'consent_items', 'consent_records', 'audit_log', 'api_keys', 'webhook_subscriptions', 'webhook_deliveries', 'rate_grants', 'rate_buckets']) {
        expect(await db.get(`SELECT COUNT(*) AS n FROM ${table}`)).toBeDefined();
      }
    } finally {
      await db.close();
    }
  });

  it('rolls a failed transaction back', async () => {
    const db = await engine.open();
    try {
      await expect(
        db.transaction(async (tx) => {
          await tx.run("INSERT INTO api_keys (id, label, key_hash, scopes, created_at) VALUES ('k1', 'x', 'h', 'admin', 1)");
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await db.get("SELECT id FROM api_keys WHERE id = 'k1'")).toBeUndefined();
    } finally {
      await db.close();
    }
  });
});

describe('toPgPlaceholders', () => {
  it('numbers the ? outside string literals', () => {
    expect(toPgPlaceholders("SELECT ? , '?' , ?")).toBe("SELECT $1 , '?' , $2");
  });
});
