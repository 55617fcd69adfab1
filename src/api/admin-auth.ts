import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../errors.ts';

/**
 * Guards operator routes with the admin key from config, sent as `Authorization: Bearer <key>`
 * or `X-Admin-Key`. Compared as SHA-256 digests in constant time, so neither timing nor length
 * tells an attacker anything.
 */
export function requireAdminKey(adminKey: string): RequestHandler {
  const expected = createHash('sha256').update(adminKey).digest();
  return (req, _res, next) => {
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : req.headers['x-admin-key'];
    if (typeof given !== 'string' || !timingSafeEqual(createHash('sha256').update(given).digest(), expected)) {
      next(new UnauthorizedError('a valid admin key is required (Authorization: Bearer <key> or X-Admin-Key)'));
      return;
    }
    next();
  };
}
