import type { RequestHandler } from 'express';
import type { Config } from '../config/load.ts';
import type { Db } from '../store/db.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import { apiKeyGuard, createKeyCache } from './auth.ts';
import type { Scope } from './keys.ts';
import { createRateLimiter } from './rate-limit.ts';

/** The consent API's guard: API keys from the store (cached briefly), each rate limited (config `api.rateLimit`). */
export function apiGuard(db: Db, config: Config, clock: Clock = systemClock): (scope: Scope) => RequestHandler {
  return apiKeyGuard({ keys: createKeyCache(db, { clock }), limiter: createRateLimiter({ perSecond: config.api.rateLimit.perSecond, burst: config.api.rateLimit.burst, clock }) });
}
