import type { Request } from 'express';

/**
 * The query string as the client sent it (after `?`, '' when none), from `originalUrl` so a
 * router's mount path does not matter. Clients read their hit parameters from it.
 */
export function queryString(req: Request): string {
  const at = req.originalUrl.indexOf('?');
  return at === -1 ? '' : req.originalUrl.slice(at + 1);
}
