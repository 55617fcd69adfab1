import type { RequestHandler } from 'express';
import { LRUCache } from 'lru-cache';
import { RateLimitedError } from '../errors.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import { stepBucket } from '../store/rate-limits.ts';

/**
 * Per-key rate limit: a token bucket per API key. A bucket holds up to `burst` tokens, refills at
 * `perSecond` (or `perMinute`), and each request takes one; an empty bucket answers 429 with
 * `Retry-After` (whole seconds, rounded up) saying when the next token is there. The bucket maths
 * is pure with the clock passed in; the limiter keeps the buckets: in memory per instance (N
 * instances allow N times the rate), or in the store for the fleet (`createSharedRateLimiter`,
 * config `api.rateLimit.scope: fleet`).
 *
 * Per minute is how CookieBoss states its plans (seed cookieboss-consent-verification-api.txt:
 * 100, 500, 1,000 requests per minute). A bucket of `perMinute` tokens refilled at perMinute / 60 s
 * admits every client that keeps to at most perMinute requests in any 60 s window (what such a
 * client is built for): over a span of L ms it admits burst + L·perMinute/60,000 ≥ what the window
 * rule allows. Its Retry-After is the wait for one token, 60 / perMinute s rounded up (1 s at 100
 * per minute, up to 60 s at 1 per minute).
 */
export type RateLimit = {
  /** Requests allowed at once from a full bucket (≥ 1). */
  burst: number;
} & ({ /** Sustained requests per second. */ perSecond: number; perMinute?: undefined } | { /** Sustained requests per minute. */ perMinute: number; perSecond?: undefined });

/** Tokens a bucket gains per millisecond. */
function refillPerMs(limit: RateLimit): number {
  return limit.perMinute !== undefined ? limit.perMinute / 60_000 : limit.perSecond / 1000;
}

/** `api.rateLimit` without a rate: 50 per second, bursts of 100. */
export const DEFAULT_PER_SECOND = 50;
export const DEFAULT_BURST = 100;

/** Config `api.rateLimit` (exactly one of perSecond and perMinute; neither: 50 per second) → a RateLimit. */
export function rateLimitFromConfig(c: { perSecond?: number | undefined; perMinute?: number | undefined; burst?: number | undefined }): RateLimit {
  if (c.perMinute !== undefined) return { perMinute: c.perMinute, burst: c.burst ?? c.perMinute };
  return { perSecond: c.perSecond ?? DEFAULT_PER_SECOND, burst: c.burst ?? DEFAULT_BURST };
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was computed (ms). */
  at: number;
}

export type TakeResult = { allowed: true; bucket: Bucket } | { allowed: false; bucket: Bucket; retryAfterMs: number };

/** Float slack so a bucket refilled to 0.9999999… by rounding still counts as one token. */
const EPSILON = 1e-9;

/** Takes one token from `bucket` (undefined: a new, full bucket) at `now`. Pure. */
export function takeToken(bucket: Bucket | undefined, now: number, limit: RateLimit): TakeResult {
  // A clock that steps back refills nothing (and does not move the bucket's time back).
  const at = bucket === undefined ? now : Math.max(now, bucket.at);
  const perMs = refillPerMs(limit);
  const tokens = bucket === undefined ? limit.burst : Math.min(limit.burst, bucket.tokens + (at - bucket.at) * perMs);
  if (tokens >= 1 - EPSILON) return { allowed: true, bucket: { tokens: Math.max(0, tokens - 1), at } };
  return { allowed: false, bucket: { tokens, at }, retryAfterMs: (1 - tokens) / perMs };
}

/** `Retry-After` for a wait: whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000 - EPSILON));
}

export type RateLimitOver = { retryAfterSeconds: number } | undefined;

export interface RateLimiter {
  /** Takes a token for `key`: undefined when allowed, else the seconds to wait. */
  take(key: string): RateLimitOver;
}

/** A limiter that may answer later: the fleet's, whose buckets are in the store. */
export interface KeyRateLimiter {
  take(key: string): RateLimitOver | Promise<RateLimitOver>;
}

export type RateLimiterOptions = RateLimit & {
  /** The time source; default the system clock. */
  clock?: Clock;
  /** Buckets kept (least recently used dropped, i.e. refilled); keys are API keys, so few. */
  maxKeys?: number;
};

export function createRateLimiter(o: RateLimiterOptions): RateLimiter {
  checkLimit(o);
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const buckets = new LRUCache<string, Bucket>({ max: o.maxKeys ?? 10_000 });
  return {
    take(key) {
      const r = takeToken(buckets.get(key), now(), o);
      buckets.set(key, r.bucket);
      return r.allowed ? undefined : { retryAfterSeconds: retryAfterSeconds(r.retryAfterMs) };
    },
  };
}

function checkLimit(o: RateLimiterOptions): void {
  if (!(refillPerMs(o) > 0) || !(o.burst >= 1)) throw new RangeError('rate limit: perSecond (or perMinute) must be > 0 and burst ≥ 1');
}

export type SharedRateLimiterOptions = RateLimiterOptions & {
  db: Db;
  /** The buckets' name in the store (one per limit, e.g. `api`). */
  name: string;
  /** Told of each store failure; the request is then let through (fail open). */
  onError: (err: unknown) => void;
};

/**
 * The per-key token bucket with its state in the store, shared by every instance on it: one
 * short locked step per request (src/store/rate-limits.ts `stepBucket`) around the same pure
 * `takeToken`. Each instance reads its own clock: a clock ahead by s seconds refills s × rate
 * tokens early (and one behind refills nothing until it catches up), a small error for a limit
 * that protects Tagwarden itself. If the store fails the request passes (fail open, `onError`):
 * the API it guards needs the same store, so a store that is down refuses the request anyway, and
 * a flaky one must not turn every API call into a 429.
 */
export function createSharedRateLimiter(o: SharedRateLimiterOptions): KeyRateLimiter {
  checkLimit(o);
  const clock = o.clock ?? systemClock;
  return {
    async take(key) {
      try {
        const r = await stepBucket(o.db, o.name, key, (current) => {
          const taken = takeToken(current, clock.now(), o);
          return { next: taken.bucket, result: taken };
        });
        return r.allowed ? undefined : { retryAfterSeconds: retryAfterSeconds(r.retryAfterMs) };
      } catch (err) {
        o.onError(err);
        return undefined;
      }
    },
  };
}

/**
 * Rejects with 429 + `Retry-After` when `key` is over its limit; otherwise undefined. Sets the
 * header on `res` so the error handler's JSON body leaves with it.
 */
export async function checkRateLimit(limiter: KeyRateLimiter, key: string, res: { setHeader(name: string, value: string): unknown }): Promise<RateLimitedError | undefined> {
  const over = await limiter.take(key);
  if (over === undefined) return undefined;
  res.setHeader('Retry-After', String(over.retryAfterSeconds));
  return new RateLimitedError(`rate limit exceeded for API key ${key}; retry after ${over.retryAfterSeconds} s`, { details: { retryAfterSeconds: over.retryAfterSeconds } });
}

/**
 * Middleware limiting by `res.locals.apiKeyId` (set by the auth middleware). A request without a
 * key id passes untouched: unauthenticated requests are answered 401 by the auth, never limited
 * by key. `requireScope` applies the limiter itself; this is for routes that authenticate otherwise.
 */
export function rateLimitByKey(limiter: KeyRateLimiter): RequestHandler {
  return (_req, res, next) => {
    const id = (res.locals as Record<string, unknown>).apiKeyId;
    if (typeof id !== 'string') next();
    else checkRateLimit(limiter, id, res).then(next, next);
  };
}

/**
 * Failed authentications per client address: a token bucket per address that only failures take
 * from. An address with no token left is refused before its key is even checked, so guessing keys
 * costs the guesser time and the store nothing. Buckets of addresses not seen lately are dropped
 * (LRU), which refills them: the bound on memory, at the price of forgetting the quietest.
 */
export interface FailureThrottle {
  /** Undefined when `key` may try now, else the seconds to wait. Takes no token. */
  blocked(key: string): { retryAfterSeconds: number } | undefined;
  /** Counts one failure of `key`. */
  fail(key: string): void;
}

export function createFailureThrottle(o: RateLimiterOptions): FailureThrottle {
  if (!(refillPerMs(o) > 0) || !(o.burst >= 1)) throw new RangeError('failure throttle: perSecond (or perMinute) must be > 0 and burst ≥ 1');
  const clock = o.clock ?? systemClock;
  const buckets = new LRUCache<string, Bucket>({ max: o.maxKeys ?? 100_000 });
  return {
    blocked(key) {
      // A look at the bucket, not a take: the result is not stored (only failures take tokens).
      const peek = takeToken(buckets.get(key), clock.now(), o);
      return peek.allowed ? undefined : { retryAfterSeconds: retryAfterSeconds(peek.retryAfterMs) };
    },
    fail(key) {
      buckets.set(key, takeToken(buckets.get(key), clock.now(), o).bucket);
    },
  };
}

/**
 * 429 when `key` has failed too often lately (see FailureThrottle); otherwise undefined. Its
 * `Retry-After` travels on the error (`retryAfterS`), set by whichever handler answers it.
 */
export function checkFailureThrottle(throttle: FailureThrottle, key: string): RateLimitedError | undefined {
  const over = throttle.blocked(key);
  if (over === undefined) return undefined;
  return new RateLimitedError(`too many failed authentications from this address; retry after ${over.retryAfterSeconds} s`, { retryAfterS: over.retryAfterSeconds, details: { retryAfterSeconds: over.retryAfterSeconds } });
}
