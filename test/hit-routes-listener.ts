import type { RequestListener } from 'node:http';
import { pino } from 'pino';
import { NotFoundError } from '../src/errors.ts';
import { sendErrorJson } from '../src/http/errors.ts';
import { hitRouter, type HitRoute } from '../src/http/hit-router.ts';

/** A request listener serving only `routes` (404 for any other path), for the tests of one client's routes. */
export function routesListener(routes: ReadonlyMap<string, HitRoute>, accepting: () => boolean = () => true): RequestListener {
  const router = hitRouter(routes, { accepting, log: pino({ level: 'silent' }) });
  return (req, res) => {
    if (!router(req, res)) sendErrorJson(res, new NotFoundError(`no route for ${req.method} ${req.url}`));
  };
}
