import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { InternalError, NotFoundError, TagwardenError, toErrorBody } from '../errors.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import { assignRequestId, requestIdOf } from '../observability/request-id.ts';

export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no route for ${req.method} ${req.path}`));
};

/**
 * The error a request is answered with: a TagwardenError as it is; anything else is logged (with
 * the request's method and path or route pattern, never its body or query) and answered as an InternalError, so an
 * unexpected error never leaks its message. Shared by Express's error handler and the hit router.
 */
export function answerableError(err: unknown, log: Logger, method: string | undefined, path: string | undefined, requestId?: string): TagwardenError {
  if (err instanceof TagwardenError) return err;
  log.error({ err, requestId, method, path }, 'unexpected error');
  return new InternalError('internal error');
}

/**
 * Sets `res.locals.requestId` for the routes: the id the request was given in front of Express
 * (src/proxy/host-guard.ts `guarded`), or one given now when Express is served alone.
 */
export const requestIdLocals: RequestHandler = (req, res, next) => {
  res.locals.requestId = requestIdOf(req) ?? assignRequestId(req, res);
  next();
};

/**
 * Every error leaves as `{error: {code, message, details?, requestId?}}`; unexpected ones never
 * leak their message. Each answer is logged (`request refused`, rate-limited per code: warn for a
 * 5xx, info for a 4xx) with its route pattern (never the path: it may hold an id) and request id.
 */
export function errorHandler(log: Logger, refusals?: RateLimitedLog): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const requestId = requestIdOf(req);
    // The route's pattern (`/api/v1/visitors/:visitorId`), never the path: it may hold an id.
    const pattern = (req.route as { path?: unknown } | undefined)?.path;
    const route = typeof pattern === 'string' ? pattern : undefined;
    const e = answerableError(err, log, req.method, route, requestId);
    if (err === e) refusals?.(e.status >= 500 ? 'warn' : 'info', `http:${e.code}`, { requestId, method: req.method, route, status: e.status, code: e.code, reason: e.code }, 'request refused');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e.retryAfterS !== undefined) res.setHeader('retry-after', String(e.retryAfterS));
    const body = toErrorBody(e);
    if (requestId !== undefined) body.error.requestId = requestId;
    res.status(e.status).json(body);
  };
}

/**
 * Answers an error as JSON outside Express (the hit routes, the request guard, the script proxy),
 * as the error handler does: its status, its body, its Retry-After, never cached.
 */
export function sendErrorJson(res: ServerResponse, err: TagwardenError): void {
  sendJson(res, err.status, toErrorBody(err), err.retryAfterS === undefined ? undefined : { 'retry-after': String(err.retryAfterS) });
}

/** Answers `value` as JSON outside Express, never cached. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}
