import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../errors.ts';
import { requestFailureKey } from './auth.ts';
import { checkFailureThrottle, type FailureThrottle } from './rate-limit.ts';

export interface AdminAuthOptions {
  /** Failed attempts per client address (config `api.authFailures`); none when undefined. */
  failures?: FailureThrottle;
  /** Trusted reverse proxies in front (config `server.trustProxyHops`), for the client address. Default 0. */
  trustProxyHops?: number;
}

/**
 * Guards operator routes with the admin key from config, sent as `Authorization: Bearer <key>`
 * or `X-Admin-Key`. Compared as SHA-256 digests in constant time, so neither timing nor length
 * tells an attacker anything. With `failures`, an address that sent wrong keys too often is
 * answered 429 with `Retry-After` before its key is compared, the right key included: guessing
 * the admin key is slowed to the configured rate per address.
 */
export function requireAdminKey(adminKey: string, o: AdminAuthOptions = {}): RequestHandler {
  const matches = adminKeyMatcher(adminKey);
  return (req, _res, next) => {
    const failureKey = o.failures === undefined ? undefined : requestFailureKey(req, o.trustProxyHops ?? 0);
    if (o.failures !== undefined && failureKey !== undefined) {
      const throttled = checkFailureThrottle(o.failures, failureKey);
      if (throttled !== undefined) {
        next(throttled);
        return;
      }
    }
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : req.headers['x-admin-key'];
    if (!matches(given)) {
      // A request without any key is not a guess; only a wrong key counts.
      if (typeof given === 'string' && failureKey !== undefined) o.failures?.fail(failureKey);
      next(new UnauthorizedError('a valid admin key is required (Authorization: Bearer <key> or X-Admin-Key)'));
      return;
    }
    next();
  };
}

/**
 * Whether a presented value is the admin key: compared as SHA-256 digests in constant time, so
 * neither timing nor length tells anything. For the /debug routes and the dashboard's login.
 */
export function adminKeyMatcher(adminKey: string): (given: unknown) => given is string {
  const expected = createHash('sha256').update(adminKey).digest();
  return (given): given is string => typeof given === 'string' && timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}
