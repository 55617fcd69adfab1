import type { RequestHandler } from 'express';
import { LRUCache } from 'lru-cache';
import { RateLimitedError } from '../errors.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

/**
 * Per-key rate limit: a token bucket per API key. A bucket holds up to `burst` tokens, refills at
 * `perSecond`, and each request takes one; an empty bucket answers 429 with `Retry-After` (whole
 * seconds, rounded up) saying when the next token is there. The bucket maths is pure with the
 * clock passed in; the limiter keeps the buckets (per instance: N instances allow N times the rate).
 */
export interface RateLimit {
  /** Sustained requests per second. */
  perSecond: number;
  /** Requests allowed at once from a full bucket (≥ 1). */
  burst: number;
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
  const tokens = bucket === undefined ? limit.burst : Math.min(limit.burst, bucket.tokens + ((at - bucket.at) * limit.perSecond) / 1000);
  if (tokens >= 1 - EPSILON) return { allowed: true, bucket: { tokens: Math.max(0, tokens - 1), at } };
  return { allowed: false, bucket: { tokens, at }, retryAfterMs: ((1 - tokens) * 1000) / limit.perSecond };
}

/** `Retry-After` for a wait: whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000 - EPSILON));
}

export interface RateLimiter {
  /** Takes a token for `key`: undefined when allowed, else the seconds to wait. */
  take(key: string): { retryAfterSeconds: number } | undefined;
}

export interface RateLimiterOptions extends RateLimit {
  /** The time source; default the system clock. */
  clock?: Clock;
  /** Buckets kept (least recently used dropped, i.e. refilled); keys are API keys, so few. */
  maxKeys?: number;
}

export function createRateLimiter(o: RateLimiterOptions): RateLimiter {
  if (!(o.perSecond > 0) || !(o.burst >= 1)) throw new RangeError('rate limit: perSecond must be > 0 and burst ≥ 1');
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

/**
 * Rejects with 429 + `Retry-After` when `key` is over its limit; otherwise undefined. Sets the
 * header on `res` so the error handler's JSON body leaves with it.
 */
export function checkRateLimit(limiter: RateLimiter, key: string, res: { setHeader(name: string, value: string): unknown }): RateLimitedError | undefined {
  const over = limiter.take(key);
  if (over === undefined) return undefined;
  res.setHeader('Retry-After', String(over.retryAfterSeconds));
  return new RateLimitedError(`rate limit exceeded for API key ${key}; retry after ${over.retryAfterSeconds} s`, { details: { retryAfterSeconds: over.retryAfterSeconds } });
}

/**
 * Middleware limiting by `res.locals.apiKeyId` (set by the auth middleware). A request without a
 * key id passes untouched: unauthenticated requests are answered 401 by the auth, never limited
 * by key. `requireScope` applies the limiter itself; this is for routes that authenticate otherwise.
 */
export function rateLimitByKey(limiter: RateLimiter): RequestHandler {
  return (_req, res, next) => {
    const id = (res.locals as Record<string, unknown>).apiKeyId;
    next(typeof id === 'string' ? checkRateLimit(limiter, id, res) : undefined);
  };
}
