import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { MalformedBodyError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.ts';

/**
 * Reads a JSON body with a hard byte limit. Accepts `application/json`, `text/plain` (what
 * `navigator.sendBeacon` sends for a string; https://w3c.github.io/beacon/#sec-processing-model)
 * and no content type. The limit is enforced on the declared length before reading and on the
 * bytes actually received, so a lying or chunked client cannot push more.
 */
export function jsonBody(limit: number): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const ctype = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (ctype !== '' && ctype !== 'application/json' && ctype !== 'text/plain') {
      next(new UnsupportedMediaTypeError(`content type ${ctype} is not accepted; send application/json or text/plain`));
      return;
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      next(new UnsupportedMediaTypeError(`content encoding ${encoding} is not accepted`));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) {
      tooLarge(req, res, next, limit);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        next(err);
        return;
      }
      const text = Buffer.concat(chunks, size).toString('utf8');
      if (text.trim() === '') {
        next(new MalformedBodyError('the body is empty; send a JSON object'));
        return;
      }
      try {
        req.body = JSON.parse(text) as unknown;
      } catch (e) {
        next(new MalformedBodyError(`the body is not valid JSON: ${(e as Error).message}`));
        return;
      }
      next();
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.off('data', onData);
        tooLarge(req, res, next, limit);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish();
    const onError = (e: Error): void => finish(new MalformedBodyError(`the body could not be read: ${e.message}`));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  };
}

/** Refuses an oversized body with 413 (the client routes reading their own bodies use it too). */
export function tooLarge(req: Request, res: Response, next: NextFunction, limit: number): void {
  // Answer and close: draining an oversized body would let the client make us read it all anyway.
  res.setHeader('connection', 'close');
  req.resume();
  next(new PayloadTooLargeError(`the body is larger than ${limit} bytes`, { details: { limit } }));
}
