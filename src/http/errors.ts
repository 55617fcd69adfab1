import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { InternalError, NotFoundError, TagwardenError, toErrorBody } from '../errors.ts';

export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no route for ${req.method} ${req.path}`));
};

/** Every error leaves as `{error: {code, message, details?}}`; unexpected ones never leak their message. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let e: TagwardenError;
    if (err instanceof TagwardenError) e = err;
    else {
      log.error({ err, method: req.method, path: req.path }, 'unexpected error');
      e = new InternalError('internal error');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e.retryAfterS !== undefined) res.setHeader('retry-after', String(e.retryAfterS));
    res.status(e.status).json(toErrorBody(e));
  };
}

/**
 * Answers an error as JSON outside Express (the fast paths, the pixel and GA4 answers, the script
 * proxy), as the error handler does: its status, its body, its Retry-After, never cached.
 */
export function sendErrorJson(res: ServerResponse, err: TagwardenError): void {
  const text = JSON.stringify(toErrorBody(err));
  const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' };
  if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS);
  res.writeHead(err.status, headers);
  res.end(text);
}
