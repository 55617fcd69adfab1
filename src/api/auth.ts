import type { Request, RequestHandler } from 'express';
import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import type { Queryable } from '../store/db.ts';
import { clientIp } from '../http/client-ip.ts';
import { findApiKey, hasScope, hashApiKey, type ApiKeyInfo, type Scope } from './keys.ts';
import { checkFailureThrottle, checkRateLimit, type FailureThrottle, type KeyRateLimiter } from './rate-limit.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { SessionAuth } from './ui/session-check.ts';

/**
 * API-key authentication for the server-to-server API. The key comes in `X-API-Key` or
 * `Authorization: Bearer <key>`:
 * - none, or unknown, or revoked → 401 with `WWW-Authenticate: Bearer`;
 * - a client address over its budget of failed authentications (`failures`) → 429 with
 *   `Retry-After`, the key not looked up (unless its look-up is cached as found: a good key is
 *   never locked out by failures it did not make);
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
  /** The key `presented` names when its look-up is cached as found (no database), else undefined. */
  cached?(presented: string): ApiKeyInfo | undefined;
  /** Drops every cached look-up (after an in-process revocation). */
  forget(): void;
}

export interface KeyCacheOptions {
  ttlMs?: number;
  /** Cached found keys (LRU). */
  max?: number;
  /**
   * Cached "no such key" answers (LRU of key digests), kept apart from the found keys so a flood
   * of wrong keys cannot evict the good ones; 0: not cached. Default 10,000.
   */
  negativeMax?: number;
  /** The time source; default the system clock. */
  clock?: Clock;
  /** The database look-up (findApiKey); injectable so tests can count look-ups. */
  find?: typeof findApiKey;
}

/**
 * `findApiKey` behind short LRU caches keyed by the key's SHA-256 (the raw key is not kept): one
 * of found keys, one of keys found missing. Concurrent look-ups of the same key share one query;
 * a failed query is not cached.
 */
export function createKeyCache(db: Queryable, o: KeyCacheOptions = {}): KeyLookup {
  const ttlMs = o.ttlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
  const clock = o.clock ?? systemClock;
  const find = o.find ?? findApiKey;
  const now = (): number => clock.now();
  const found = new LRUCache<string, { expires: number; key: ApiKeyInfo }>({ max: o.max ?? 10_000 });
  const negativeMax = o.negativeMax ?? 10_000;
  const missing = negativeMax > 0 ? new LRUCache<string, { expires: number }>({ max: negativeMax }) : undefined;
  const pending = new Map<string, Promise<ApiKeyInfo | undefined>>();
  // Bumped by forget(): a look-up started before it must not refill the cache after it.
  let generation = 0;
  const cachedFound = (hash: string, t: number): ApiKeyInfo | undefined => {
    const hit = found.get(hash);
    return hit !== undefined && hit.expires > t ? hit.key : undefined;
  };
  return {
    lookup(presented) {
      const hash = hashApiKey(presented);
      const t = now();
      const hit = cachedFound(hash, t);
      if (hit !== undefined) return Promise.resolve(hit);
      const miss = missing?.get(hash);
      if (miss !== undefined && miss.expires > t) return Promise.resolve(undefined);
      const inFlight = pending.get(hash);
      if (inFlight !== undefined) return inFlight;
      const gen = generation;
      const query = find(db, presented, t).then(
        (key) => {
          if (pending.get(hash) === query) pending.delete(hash);
          if (gen === generation) {
            if (key === undefined) missing?.set(hash, { expires: t + ttlMs });
            else found.set(hash, { expires: t + ttlMs, key });
          }
          return key;
        },
        (err: unknown) => {
          if (pending.get(hash) === query) pending.delete(hash);
          throw err;
        },
      );
      pending.set(hash, query);
      return query;
    },
    cached(presented) {
      return cachedFound(hashApiKey(presented), now());
    },
    forget() {
      generation++;
      found.clear();
      missing?.clear();
      pending.clear();
    },
  };
}

/**
 * The key failed authentications of a client address are counted under: the address itself, or
 * for IPv6 its /64 (one customer's allocation, in which an attacker can pick any of 2^64
 * addresses). Requests whose address is unknown share one key.
 */
export function failureKeyOf(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::', 2);
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** The failure key of a request's client (src/http/client-ip.ts, with `trustProxyHops` trusted proxies). */
export function requestFailureKey(req: Request, trustProxyHops: number): string {
  return failureKeyOf(clientIp(req, trustProxyHops));
}

export interface AuthDeps {
  keys: KeyLookup;
  /** Per-key rate limit; none when undefined. */
  limiter?: KeyRateLimiter;
  /** Failed authentications per client address (config `api.authFailures`); none when undefined. */
  failures?: FailureThrottle;
  /** Trusted reverse proxies in front (config `server.trustProxyHops`), for the client address. Default 0. */
  trustProxyHops?: number;
  /**
   * The dashboard's sessions (src/api/ui/session-check.ts): a request presenting no API key but a
   * valid session cookie and its CSRF token is admitted as an `admin` key, rate limited as one
   * key (`ui-session`). Absent: the dashboard is off and only API keys count.
   */
  session?: SessionAuth;
}

/** The key id a dashboard session acts as: in `res.locals.apiKeyId`, the audit trail and the rate limiter. */
export const SESSION_KEY_ID = 'ui-session';

/** The key a request presents: `X-API-Key`, else `Authorization: Bearer <key>` (scheme case-insensitive). */
export function presentedKey(headers: { authorization?: string | undefined; 'x-api-key'?: string | string[] | undefined }): string | undefined {
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x.trim() !== '') return x.trim();
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return m?.[1];
}

const CHALLENGE = 'Bearer realm="tagwarden"';

/**
 * Admits requests holding an active API key with `scope` (see the module comment for the answers),
 * or with no key, a dashboard session (AuthDeps.session), which has every scope.
 */
export function requireScope(scope: Scope, deps: AuthDeps): RequestHandler {
  return async (req, res, next) => {
    try {
      const presented = presentedKey(req.headers);
      const session = presented === undefined ? deps.session?.(req) : undefined;
      if (session !== undefined) {
        const refused = 'error' in session ? session.error : deps.limiter === undefined ? undefined : await checkRateLimit(deps.limiter, SESSION_KEY_ID, res);
        if (refused === undefined) res.locals.apiKeyId = SESSION_KEY_ID;
        next(refused);
        return;
      }
      if (presented === undefined) {
        res.setHeader('WWW-Authenticate', CHALLENGE);
        next(new UnauthorizedError('an API key is required (X-API-Key: <key> or Authorization: Bearer <key>)'));
        return;
      }
      // An address that failed too often is answered before any look-up (issue 13: 4,000 random
      // keys were 4,000 database queries), but a key already known good passes: a client behind
      // the same address as an attacker keeps working while its key is cached.
      const failureKey = deps.failures === undefined ? undefined : requestFailureKey(req, deps.trustProxyHops ?? 0);
      let key = deps.keys.cached?.(presented);
      if (key === undefined && deps.failures !== undefined && failureKey !== undefined) {
        const throttled = checkFailureThrottle(deps.failures, failureKey);
        if (throttled !== undefined) {
          next(throttled);
          return;
        }
      }
      key ??= await deps.keys.lookup(presented);
      if (key === undefined) {
        if (failureKey !== undefined) deps.failures?.fail(failureKey);
        res.setHeader('WWW-Authenticate', `${CHALLENGE}, error="invalid_token"`);
        next(new UnauthorizedError('the API key is unknown or revoked'));
        return;
      }
      const limited = deps.limiter === undefined ? undefined : await checkRateLimit(deps.limiter, key.id, res);
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
