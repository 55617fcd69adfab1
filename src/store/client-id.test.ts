import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { clientIdFor, clientIdKeys, loadClientIdKey, type ClientIdKey } from './client-id.ts';
import type { Db } from './db.ts';

const KEY: ClientIdKey = { secret: Buffer.from(Array.from({ length: 32 }, (_, i) => i)) };

describe('clientIdFor', () => {
  it('is a version-8 RFC 9562 UUID, pinned: ids already handed out must never change', () => {
    const id = clientIdFor(KEY, 'shop', 'me@example.com');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(id).toBe(PINNED);
  });

  it('the same (site, custom user id) always gives the same id; any other pair another', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (s1, u1, s2, u2) => {
        expect(clientIdFor(KEY, s1, u1)).toBe(clientIdFor(KEY, s1, u1));
        if (s1 !== s2 || u1 !== u2) expect(clientIdFor(KEY, s1, u1)).not.toBe(clientIdFor(KEY, s2, u2));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('does not confuse where the site ends and the user id begins', () => {
    expect(clientIdFor(KEY, 'ab', 'c')).not.toBe(clientIdFor(KEY, 'a', 'bc'));
    expect(clientIdFor(KEY, 'a:b', 'c')).not.toBe(clientIdFor(KEY, 'a', 'b:c'));
  });

  it('cannot be computed without the key: another key, another id', () => {
    expect(clientIdFor({ secret: Buffer.alloc(32, 1) }, 'shop', 'me@example.com')).not.toBe(PINNED);
  });
});

forEachEngine('the ClientId key of a store', (engine) => {
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('is created once, 32 random bytes, and read back the same by every later load', async () => {
    const [a, b] = await Promise.all([loadClientIdKey(db, 1), loadClientIdKey(db, 2)]);
    expect(a.secret).toHaveLength(32);
    expect(b.secret.equals(a.secret)).toBe(true);
    const keys = clientIdKeys(db, () => 3);
    expect((await keys()).secret.equals(a.secret)).toBe(true);
    expect(await keys()).toBe(await keys());
  });
});

// Computed independently: HMAC-SHA-256 under bytes 0..31 of '["shop","me@example.com"]', first 16 bytes, version 8, variant 10.
const PINNED = '9e6cb834-1570-8edc-bd03-6d2078daaf09';
