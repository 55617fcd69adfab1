/**
 * The router of the client hit routes (`/v1/*`, `/g/collect`, `/tr`), on node:http without
 * Express: these are the requests Tagwarden serves thousands of times a second, and Express's
 * routing, request/response decoration and middleware chain cost about as much CPU per request as
 * validating, deciding and rendering the hit (docs/performance.md). Each route has this one
 * implementation, refusals included; Express serves everything else (src/app.ts).
 *
 * What every hit route shares is done here, once: path matching as Express 5 matches by default
 * (case-insensitive, one optional trailing slash; https://expressjs.com/en/guide/migrating-5.html
 * and path-to-regexp 8), CORS and the preflight, 405 with `Allow` for a method the route does not
 * take, 503 once shutdown began, and the JSON error answer of anything a handler throws or hands
 * to `fail`. The request-target guard (src/proxy/host-guard.ts) has run before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { InternalError, MethodNotAllowedError, shuttingDownError, type TagwardenError } from '../errors.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import type { Cors } from './cors.ts';
import { answerableError, sendErrorJson } from './errors.ts';
import { requestIdOf } from '../observability/request-id.ts';

/** Where a hit was sent, and how its handler answers an error. */
export interface HitTarget {
  /** The path as the client wrote it, without the query string (the route of log lines). */
  path: string;
  /** The raw query string, '' when none. */
  query: string;
  /** The request's id (src/observability/request-id.ts), for every log line about it; undefined when none was assigned. */
  requestId: string | undefined;
  /** Answers `err` (a TagwardenError as its JSON body; anything else as a logged 500). */
  fail: (err: unknown) => void;
}

export type HitHandler = (req: IncomingMessage, res: ServerResponse, target: HitTarget) => void;

/** One hit route: a handler per method it takes (GET also answers HEAD), and its CORS, if any. */
export interface HitRoute {
  GET?: HitHandler;
  POST?: HitHandler;
  /** For routes browsers call with fetch/XHR: CORS headers on every answer, and the OPTIONS preflight. */
  cors?: Cors;
}

export interface HitRouterOptions {
  /** False once shutdown began: every hit is then refused with 503, its body unread. */
  accepting: () => boolean;
  /** Where an unexpected error of a handler is logged. */
  log: Logger;
  /** Where the router's own refusals (405, 503 during shutdown) are logged, rate-limited; absent: not logged. */
  refusals?: RateLimitedLog;
}

/** Serves the request and returns true when its path is a hit route; returns false, untouched, otherwise. */
export type HitRouter = (req: IncomingMessage, res: ServerResponse) => boolean;

interface Entry {
  route: HitRoute;
  allow: string;
}

/**
 * `routes` maps each path, in lower case without a trailing slash (`/v1/track`), to its route.
 */
export function hitRouter(routes: ReadonlyMap<string, HitRoute>, opts: HitRouterOptions): HitRouter {
  const table = new Map<string, Entry>();
  for (const [path, route] of routes) {
    if (path !== routeKey(path)) throw new InternalError(`hit route ${path}: register it in lower case without a trailing slash`);
    const methods = [...(route.GET === undefined ? [] : ['GET', 'HEAD']), ...(route.POST === undefined ? [] : ['POST']), 'OPTIONS'];
    const entry = { route, allow: methods.join(', ') };
    // Both exact forms, so the usual request is found by one look-up.
    table.set(path, entry);
    table.set(`${path}/`, entry);
  }
  const unavailable = shuttingDownError();

  // `path` without the query string: on /g/collect and /tr the query string is the hit (visitor
  // ids, page URLs, hashed user data), which a log line never carries.
  const fail = (req: IncomingMessage, res: ServerResponse, path: string, err: unknown): void => {
    const requestId = requestIdOf(req);
    const e = answerableError(err, opts.log, req.method, path, requestId);
    // The routes log their own refusals; a hit whose body was still arriving when shutdown began
    // is refused by the accept step, and logged here.
    if (e.status === 503 && !opts.accepting()) opts.refusals?.('warn', 'router:shutting_down', { requestId, route: path, status: e.status, code: e.code, reason: 'shutting_down' }, 'request refused');
    if (res.headersSent) res.end();
    else sendErrorJson(res, e);
  };

  /** A refusal of the router itself: logged (warn, rate-limited per reason; the route is the registered one, never the query), then answered. */
  const refused = (requestId: string | undefined, path: string, reason: string, err: TagwardenError, res: ServerResponse): void => {
    opts.refusals?.('warn', `router:${reason}`, { requestId, route: path, status: err.status, code: err.code, reason }, 'request refused');
    sendErrorJson(res, err);
  };

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    let path = q === -1 ? url : url.slice(0, q);
    // A fragment ends the path too (a client should not send one; Express's URL parser cuts it).
    const hash = path.indexOf('#');
    if (hash !== -1) path = path.slice(0, hash);
    const entry = table.get(path) ?? lookUpOtherCase(table, path);
    if (entry === undefined) return false;
    const { route } = entry;
    route.cors?.headers(req, res);
    const method = req.method;
    if (method === 'OPTIONS') {
      if (route.cors !== undefined) route.cors.preflight(req, res);
      else {
        res.writeHead(204, { allow: entry.allow });
        res.end();
      }
      return true;
    }
    const handler = method === 'POST' ? route.POST : method === 'GET' || method === 'HEAD' ? route.GET : undefined;
    const requestId = requestIdOf(req);
    if (handler === undefined) {
      res.setHeader('allow', entry.allow);
      refused(requestId, path, 'method_not_allowed', new MethodNotAllowedError(`${path} takes ${entry.allow}`), res);
      return true;
    }
    // During shutdown a hit is refused, not acknowledged: the sender keeps it and retries elsewhere.
    if (!opts.accepting()) {
      refused(requestId, path, 'shutting_down', unavailable, res);
      return true;
    }
    const target: HitTarget = { path, query: q === -1 ? '' : url.slice(q + 1), requestId, fail: (err) => fail(req, res, path, err) };
    try {
      handler(req, res, target);
    } catch (err) {
      fail(req, res, path, err);
    }
    return true;
  };
}

/** The key a path is registered under: lower case (ASCII only, as a JavaScript `i` regex compares), no trailing slash. */
function routeKey(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
}

function lookUpOtherCase(table: ReadonlyMap<string, Entry>, path: string): Entry | undefined {
  // Beyond ASCII, toLowerCase maps characters (the Kelvin sign to `k`) that a case-insensitive
  // regex without the `u` flag does not: such a path is no route, as for Express.
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(path)) return undefined;
  return table.get(path.toLowerCase());
}
