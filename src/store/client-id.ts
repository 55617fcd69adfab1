import { createHmac, randomBytes } from 'node:crypto';
import type { Queryable } from './db.ts';

/**
 * SecurePrivacy's ClientId (seed secureprivacy-universal-consent-api.txt): "the same CustomUserId
 * always leads to the same ClientId". Derived, not looked up: HMAC-SHA-256 of (siteId,
 * customUserId) under the store's own secret, its first 16 bytes laid out as an RFC 9562 version-8
 * UUID (section 5.8). Every instance on the same store computes the same id; the id reveals nothing
 * of the user id.
 *
 * Keyed, not a public hash: the integration routes answer a ClientId without authentication (the
 * seed's GET /api/universalconsent/integration/:ClientId), so a ClientId anyone could compute from
 * an email address would let anyone read that person's record. The secret is generated once per
 * store (migration 9, `instance_secrets`) and travels with its backups: restoring a store keeps
 * every ClientId handed out. Never change the name encoding or the layout.
 */
export interface ClientIdKey {
  readonly secret: Buffer;
}

export function clientIdFor(key: ClientIdKey, siteId: string, customUserId: string): string {
  // JSON of the pair: unambiguous where a separator could occur in either part.
  const name = JSON.stringify([siteId, customUserId]);
  const b = createHmac('sha256', key.secret).update(name, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The store's ClientId secret, created on first use. Instances starting together on one
 * PostgreSQL race to insert it: ON CONFLICT keeps the first, and every one reads that back.
 */
export async function loadClientIdKey(db: Queryable, now: number): Promise<ClientIdKey> {
  await db.run("INSERT INTO instance_secrets (name, value, created_at) VALUES ('client_id', ?, ?) ON CONFLICT (name) DO NOTHING", [randomBytes(32).toString('hex'), now]);
  const row = await db.get<{ value: string }>("SELECT value FROM instance_secrets WHERE name = 'client_id'");
  return { secret: Buffer.from(row!.value, 'hex') };
}

/** loadClientIdKey once, remembered; a failed load (database down) is retried on the next call. */
export function clientIdKeys(db: Queryable, now: () => number): () => Promise<ClientIdKey> {
  let loaded: Promise<ClientIdKey> | undefined;
  return () => {
    loaded ??= loadClientIdKey(db, now()).catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded;
  };
}
