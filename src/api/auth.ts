import type { RequestHandler } from 'express';
import { LRUCache } from 'lru-cache';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import type { Queryable } from '../store/db.ts';
import { findApiKey, hasScope, hashApiKey, type ApiKeyInfo, type Scope } from './keys.ts';
import { checkRateLimit, type RateLimiter } from './rate-limit.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

/**
 * API-key authentication for the server-to-server API. The key comes in `X-API-Key` or
 * `Authorization: Bearer <key>`:
 * - none, or unknown, or revoked → 401 with `WWW-Authenticate: Bearer`;
 * - valid, but over its rate limit → 429 with `Retry-After`;
 * - valid, without the route's scope → 403 (`admin` implies every scope);
 * - otherwise `res.locals.apiKeyId` is the key's public id and the request goes on.
 *
 * Look-ups are cached in memory for `ttlMs` (10 s by default), found and not found alike, so a busy
 * client does not hit the database per request. The price: a key revoked from another process
 * (the CLI, another instance) still works here until its cache entry expires, at most `ttlMs`
 * after the revocation; `forget()` drops the cache at once when the revocation happens in-process.
 */
export const DEFAULT_KEY_CACHE_TTL_MS = 10_000;

export interface KeyLookup {
  /** The active key `presented` names, or undefined. */
  lookup(presented: string): Promise<ApiKeyInfo | undefined>;
  /** Drops every cached look-up (after an in-process revocation). */
  forget(): void;
}

export interface KeyCacheOptions {
  ttlMs?: number;
  /** Cached look-ups (LRU). */
  max?: number;
  /** The time source; default the system clock. */
  clock?: Clock;
}

/**
 * `findApiKey` behind a short LRU cache keyed by the key's SHA-256 (the raw key is not kept).
 * Concurrent look-ups of the same key share one query; a failed query is not cached.
 */
export function createKeyCache(db: Queryable, o: KeyCacheOptions = {}): KeyLookup {
  const ttlMs = o.ttlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const cache = new LRUCache<string, { expires: number; key: Promise<ApiKeyInfo | undefined> }>({ max: o.max ?? 10_000 });
  return {
    lookup(presented) {
      const hash = hashApiKey(presented);
      const t = now();
      const hit = cache.get(hash);
      if (hit !== undefined && hit.expires > t) return hit.key;
      const entry = { expires: t + ttlMs, key: findApiKey(db, presented, t) };
      cache.set(hash, entry);
      entry.key.catch(() => {
        if (cache.get(hash) === entry) cache.delete(hash);
      });
      return entry.key;
    },
    forget() {
      cache.clear();
    },
  };
}

export interface AuthDeps {
  keys: KeyLookup;
  /** Per-key rate limit; none when undefined. */
  limiter?: RateLimiter;
}

/** The key a request presents: `X-API-Key`, else `Authorization: Bearer <key>` (scheme case-insensitive). */
export function presentedKey(headers: { authorization?: string | undefined; 'x-api-key'?: string | string[] | undefined }): string | undefined {
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x.trim() !== '') return x.trim();
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return m?.[1];
}

const CHALLENGE = 'Bearer realm="tagwarden"';

/** Admits requests holding an active API key with `scope` (see the module comment for the answers). */
export function requireScope(scope: Scope, deps: AuthDeps): RequestHandler {
  return async (req, res, next) => {
    try {
      const presented = presentedKey(req.headers);
      if (presented === undefined) {
        res.setHeader('WWW-Authenticate', CHALLENGE);
        next(new UnauthorizedError('an API key is required (X-API-Key: <key> or Authorization: Bearer <key>)'));
        return;
      }
      const key = await deps.keys.lookup(presented);
      if (key === undefined) {
        res.setHeader('WWW-Authenticate', `${CHALLENGE}, error="invalid_token"`);
        next(new UnauthorizedError('the API key is unknown or revoked'));
        return;
      }
      const limited = deps.limiter === undefined ? undefined : checkRateLimit(deps.limiter, key.id, res);
      if (limited !== undefined) {
        next(limited);
        return;
      }
      if (!hasScope(key.scopes, scope)) {
        res.setHeader('WWW-Authenticate', `${CHALLENGE}, error="insufficient_scope", scope="${scope}"`);
        next(new ForbiddenError(`API key ${key.id} lacks the scope ${scope}`, { details: { required: scope } }));
        return;
      }
      res.locals.apiKeyId = key.id;
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** `(scope) => middleware` sharing one cache and limiter: what the API routers take as `guard`. */
export function apiKeyGuard(deps: AuthDeps): (scope: Scope) => RequestHandler {
  return (scope) => requireScope(scope, deps);
}
