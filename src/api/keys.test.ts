import * as crypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { ValidationError } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { createApiKey, findApiKey, hashApiKey, hasScope, LAST_USED_INTERVAL_MS, listApiKeys, parseScopes, revokeApiKey } from './keys.ts';

// Spy on the constant-time comparison keys.ts imports.
vi.mock('node:crypto', async (importOriginal) => {
  const orig = await importOriginal<typeof crypto>();
  return { ...orig, timingSafeEqual: vi.fn(orig.timingSafeEqual) };
});

describe('scopes', () => {
  it('parses, de-duplicates and orders known scopes; rejects unknown and empty', () => {
    expect(parseScopes(['consent:read', 'consent:write', 'consent:read'])).toEqual(['consent:write', 'consent:read']);
    expect(() => parseScopes(['consent:write', 'consent:delete'])).toThrow(/unknown scope "consent:delete"/);
    expect(() => parseScopes([])).toThrow(ValidationError);
  });

  it('admin implies every scope', () => {
    expect(hasScope(['admin'], 'audit:read')).toBe(true);
    expect(hasScope(['consent:read'], 'consent:write')).toBe(false);
    expect(hasScope(['consent:read'], 'consent:read')).toBe(true);
  });
});

forEachEngine('api keys', (engine) => {
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('creates a key shown once: tw_ + 32 bytes base64url, id key_ + 12 hex, stored as SHA-256 only', async () => {
    const { id, key, scopes } = await createApiKey(db, { label: 'crm', scopes: ['consent:write', 'consent:read'], now: 1000 });
    expect(key).toMatch(/^tw_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(key.slice(3), 'base64url')).toHaveLength(32);
    expect(id).toMatch(/^key_[0-9a-f]{12}$/);
    expect(scopes).toEqual(['consent:write', 'consent:read']);
    const rows = await db.all('SELECT * FROM api_keys');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key_hash).toBe(crypto.createHash('sha256').update(key).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(key);
  });

  it('two keys never share a key or an id', async () => {
    const a = await createApiKey(db, { label: 'a', scopes: ['admin'] });
    const b = await createApiKey(db, { label: 'b', scopes: ['admin'] });
    expect(a.key).not.toBe(b.key);
    expect(a.id).not.toBe(b.id);
  });

  it('rejects unknown scopes without storing anything', async () => {
    await expect(createApiKey(db, { label: 'x', scopes: ['consent:write', 'root'] })).rejects.toThrow(ValidationError);
    expect(await listApiKeys(db)).toEqual([]);
  });

  it('finds the key presented, comparing the digests in constant time', async () => {
    const { id, key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'], now: 1000 });
    const tse = vi.mocked(crypto.timingSafeEqual);
    tse.mockClear();
    const found = await findApiKey(db, key, 5000);
    expect(found).toMatchObject({ id, label: 'crm', scopes: ['consent:read'], createdAt: 1000, revokedAt: null });
    expect(tse).toHaveBeenCalledTimes(1);
    const [a, b] = tse.mock.calls[0]! as [Buffer, Buffer];
    expect(a).toHaveLength(32);
    expect(Buffer.compare(a, b)).toBe(0);
    expect(a.toString('hex')).toBe(hashApiKey(key));
  });

  it('does not find unknown, altered, empty or oversized keys', async () => {
    const { key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    expect(await findApiKey(db, `${key}x`)).toBeUndefined();
    expect(await findApiKey(db, key.slice(0, -1))).toBeUndefined();
    expect(await findApiKey(db, key.toUpperCase())).toBeUndefined();
    expect(await findApiKey(db, hashApiKey(key))).toBeUndefined();
    expect(await findApiKey(db, '')).toBeUndefined();
    expect(await findApiKey(db, 'x'.repeat(10_000))).toBeUndefined();
  });

  it('a revoked key is no longer found; revoking twice or an unknown id reports false', async () => {
    const { id, key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    const other = await createApiKey(db, { label: 'other', scopes: ['consent:read'] });
    expect(await revokeApiKey(db, id, 7000)).toBe(true);
    expect(await findApiKey(db, key)).toBeUndefined();
    expect(await findApiKey(db, other.key)).toBeDefined();
    expect(await revokeApiKey(db, id, 8000)).toBe(false);
    expect(await revokeApiKey(db, 'key_000000000000')).toBe(false);
    expect((await listApiKeys(db)).find((k) => k.id === id)?.revokedAt).toBe(7000);
  });

  it('lists every key, revoked ones included, never with the key or its hash', async () => {
    const a = await createApiKey(db, { label: 'a', scopes: ['consent:write'], now: 1 });
    const b = await createApiKey(db, { label: 'b', scopes: ['audit:read', 'admin'], now: 2 });
    await revokeApiKey(db, a.id, 3);
    const list = await listApiKeys(db);
    expect(list).toEqual([
      { id: a.id, label: 'a', scopes: ['consent:write'], createdAt: 1, revokedAt: 3, lastUsedAt: null },
      { id: b.id, label: 'b', scopes: ['audit:read', 'admin'], createdAt: 2, revokedAt: null, lastUsedAt: null },
    ]);
    const text = JSON.stringify(list);
    for (const k of [a, b]) {
      expect(text).not.toContain(k.key);
      expect(text).not.toContain(hashApiKey(k.key));
    }
    for (const entry of list) expect(Object.keys(entry).sort()).toEqual(['createdAt', 'id', 'label', 'lastUsedAt', 'revokedAt', 'scopes']);
  });

  it('writes last_used_at at most once a minute per key', async () => {
    const { id, key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'], now: 0 });
    const lastUsed = async () => (await listApiKeys(db)).find((k) => k.id === id)!.lastUsedAt;
    const run = vi.spyOn(db, 'run');
    await findApiKey(db, key, 100_000);
    expect(await lastUsed()).toBe(100_000);
    expect(run).toHaveBeenCalledTimes(1);
    await findApiKey(db, key, 100_000 + LAST_USED_INTERVAL_MS - 1);
    await findApiKey(db, key, 130_000);
    expect(run).toHaveBeenCalledTimes(1);
    expect(await lastUsed()).toBe(100_000);
    await findApiKey(db, key, 100_000 + LAST_USED_INTERVAL_MS);
    expect(run).toHaveBeenCalledTimes(2);
    expect(await lastUsed()).toBe(160_000);
    run.mockRestore();
  });
});
