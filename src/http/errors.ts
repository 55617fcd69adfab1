import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { InternalError, NotFoundError, TagwardenError, toErrorBody } from '../errors.ts';

export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no route for ${req.method} ${req.path}`));
};

/**
 * The error a request is answered with: a TagwardenError as it is; anything else is logged (with
 * the request's method and path, never its body) and answered as an InternalError, so an
 * unexpected error never leaks its message. Shared by Express's error handler and the hit router.
 */
export function answerableError(err: unknown, log: Logger, method: string | undefined, path: string | undefined): TagwardenError {
  if (err instanceof TagwardenError) return err;
  log.error({ err, method, path }, 'unexpected error');
  return new InternalError('internal error');
}

/** Every error leaves as `{error: {code, message, details?}}`; unexpected ones never leak their message. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const e = answerableError(err, log, req.method, req.path);
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e.retryAfterS !== undefined) res.setHeader('retry-after', String(e.retryAfterS));
    res.status(e.status).json(toErrorBody(e));
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
