import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../errors.ts';
import type { Queryable } from '../store/db.ts';
import { systemClock } from '../lib/clock.ts';

/**
 * API keys for the server-to-server API, in the `api_keys` table. A key is shown once, when it
 * is created (`npx tagwarden keys create`); the store keeps only its SHA-256, looks a presented
 * key up by that digest and compares the digests again in constant time. Keys are scoped and
 * revocable; `id` (`key_` + 12 hex) is the public name logs and the audit log carry.
 */
export const SCOPES = ['consent:write', 'consent:read', 'audit:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What a key looks like: `tw_` + 32 random bytes in base64url (43 characters). */
export const KEY_PREFIX = 'tw_';
/** `last_used_at` is written at most this often per key, never on every request. */
export const LAST_USED_INTERVAL_MS = 60_000;
/** Longer presented keys are rejected without a look-up (a real key is 46 characters). */
const MAX_PRESENTED_LENGTH = 256;
export const MAX_LABEL_LENGTH = 200;

/** A key as listed: never the key, never its hash. */
export interface ApiKeyInfo {
  id: string;
  label: string;
  scopes: Scope[];
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

interface ApiKeyRow {
  [k: string]: unknown;
  id: string;
  label: string;
  key_hash: string;
  scopes: string;
  created_at: number | string | bigint;
  revoked_at: number | string | bigint | null;
  last_used_at: number | string | bigint | null;
}

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/** `admin` implies every scope. */
export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  return granted.includes(needed) || granted.includes('admin');
}

/** The hex SHA-256 of a key: what the table stores and what a look-up searches for. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Digests compared in constant time (equal length by construction: both are SHA-256 hex). */
function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}

/** BIGINT columns come back as strings from pg; integers from SQLite. */
function ms(v: number | string | bigint | null): number | null {
  return v === null ? null : Number(v);
}

function info(row: ApiKeyRow): ApiKeyInfo {
  const parsed: unknown = JSON.parse(row.scopes);
  const scopes = Array.isArray(parsed) ? parsed.filter((s): s is Scope => typeof s === 'string' && isScope(s)) : [];
  return { id: row.id, label: row.label, scopes, createdAt: Number(row.created_at), revokedAt: ms(row.revoked_at), lastUsedAt: ms(row.last_used_at) };
}

/** Validated, de-duplicated scopes in canonical order; ValidationError naming the unknown ones. */
export function parseScopes(scopes: readonly string[]): Scope[] {
  const unknown = scopes.filter((s) => !isScope(s));
  if (unknown.length > 0) throw new ValidationError(`unknown scope ${unknown.map((s) => `"${s}"`).join(', ')} (known: ${SCOPES.join(', ')})`, { details: { unknown } });
  if (scopes.length === 0) throw new ValidationError(`at least one scope is required (${SCOPES.join(', ')})`);
  return SCOPES.filter((s) => scopes.includes(s));
}

export interface CreateApiKeyInput {
  label: string;
  scopes: readonly string[];
  now?: number;
}

/** Creates a key; the returned `key` is the only time it exists outside the caller's hands. */
export async function createApiKey(db: Queryable, input: CreateApiKeyInput): Promise<{ id: string; key: string; scopes: Scope[] }> {
  const scopes = parseScopes(input.scopes);
  if (input.label.length > MAX_LABEL_LENGTH) throw new ValidationError(`label: at most ${MAX_LABEL_LENGTH} characters`);
  const id = `key_${randomBytes(6).toString('hex')}`;
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  await db.run('INSERT INTO api_keys (id, label, key_hash, scopes, created_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)', [
    id,
    input.label,
    hashApiKey(key),
    JSON.stringify(scopes),
    input.now ?? systemClock.now(),
  ]);
  return { id, key, scopes };
}

/** Revokes a key; true if it was active, false if unknown or already revoked. Takes effect on a running server within the auth cache's TTL. */
export async function revokeApiKey(db: Queryable, id: string, now: number = systemClock.now()): Promise<boolean> {
  return (await db.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id])) > 0;
}

/** Every key, revoked ones included, oldest first. Never the key or its hash. */
export async function listApiKeys(db: Queryable): Promise<ApiKeyInfo[]> {
  const rows = await db.all<ApiKeyRow>('SELECT id, label, key_hash, scopes, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at, id');
  return rows.map(info);
}

/**
 * The active key a client presented, or undefined (unknown, revoked, malformed). Looks the key up
 * by its SHA-256, then compares the digests in constant time. Writes `last_used_at` only when the
 * stored one is older than LAST_USED_INTERVAL_MS (the guarded UPDATE keeps concurrent instances
 * from writing twice), so a busy key costs no write per request.
 */
export async function findApiKey(db: Queryable, presented: string, now: number = systemClock.now()): Promise<ApiKeyInfo | undefined> {
  if (presented.length === 0 || presented.length > MAX_PRESENTED_LENGTH) return undefined;
  const hash = hashApiKey(presented);
  const row = await db.get<ApiKeyRow>('SELECT id, label, key_hash, scopes, created_at, revoked_at, last_used_at FROM api_keys WHERE key_hash = ?', [hash]);
  if (row === undefined || !digestsEqual(row.key_hash, hash) || row.revoked_at !== null) return undefined;
  const key = info(row);
  if (key.lastUsedAt === null || now - key.lastUsedAt >= LAST_USED_INTERVAL_MS) {
    await db.run('UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)', [now, key.id, now - LAST_USED_INTERVAL_MS]);
    key.lastUsedAt = now;
  }
  return key;
}
