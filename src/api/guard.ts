import type { RequestHandler } from 'express';
import type { Config } from '../config/load.ts';
import type { Db } from '../store/db.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import { apiKeyGuard, createKeyCache } from './auth.ts';
import type { Scope } from './keys.ts';
import type { SessionAuth } from './ui/session-check.ts';
import { createFailureThrottle, createRateLimiter, createSharedRateLimiter, rateLimitFromConfig, type FailureThrottle, type KeyRateLimiter } from './rate-limit.ts';

/**
 * The consent API's guard: API keys from the store (cached briefly, wrong ones too), each rate
 * limited (config `api.rateLimit`), failed authentications throttled per client address
 * (`api.authFailures`). With `session`, a dashboard session counts as an admin key (src/api/auth.ts).
 * `onLimiterError`: the fleet-wide limiter's store failed (the request was let through).
 */
export function apiGuard(db: Db, config: Config, clock: Clock = systemClock, session?: SessionAuth, onLimiterError: (err: unknown) => void = () => undefined): (scope: Scope) => RequestHandler {
  return apiKeyGuard({
    keys: createKeyCache(db, { clock, negativeMax: config.api.authFailures.negativeCacheEntries }),
    limiter: apiRateLimiter(db, config, clock, onLimiterError),
    failures: authFailureThrottle(config, clock),
    trustProxyHops: config.server.trustProxyHops,
    ...(session === undefined ? {} : { session }),
  });
}

/** The per-address throttle of failed authentications (config `api.authFailures`): for the API keys and the admin key. */
export function authFailureThrottle(config: Config, clock: Clock = systemClock): FailureThrottle {
  return createFailureThrottle({ perMinute: config.api.authFailures.perMinute, burst: config.api.authFailures.burst, clock });
}

/** The per-key limiter of `api.rateLimit`: in memory (`scope: instance`) or in the store (`fleet`). */
export function apiRateLimiter(db: Db, config: Config, clock: Clock, onError: (err: unknown) => void): KeyRateLimiter {
  const limit = { ...rateLimitFromConfig(config.api.rateLimit), clock };
  return config.api.rateLimit.scope === 'fleet' ? createSharedRateLimiter({ ...limit, db, name: 'api', onError }) : createRateLimiter(limit);
}
