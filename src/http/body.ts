import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { MalformedBodyError, PayloadTooLargeError, UnsupportedMediaTypeError, type TagwardenError } from '../errors.ts';

/** What reading a JSON body came to: the parsed value, or the error to answer with. */
export type BodyOutcome = { body: unknown } | { error: TagwardenError };
/** What reading a text body came to. */
export type TextOutcome = { text: string } | { error: TagwardenError };

/**
 * Why the request's headers rule its body out, before reading a byte: an unsupported content type
 * or encoding, or a declared length over the limit. Accepts `application/json`, `text/plain` (what
 * `navigator.sendBeacon` sends for a string; https://w3c.github.io/beacon/#sec-processing-model)
 * and no content type.
 */
export function bodyHeadersProblem(req: IncomingMessage, limit: number): TagwardenError | undefined {
  const ctype = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (ctype !== '' && ctype !== 'application/json' && ctype !== 'text/plain') {
    return new UnsupportedMediaTypeError(`content type ${ctype} is not accepted; send application/json or text/plain`);
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return new UnsupportedMediaTypeError(`content encoding ${encoding} is not accepted`);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return tooLargeError(limit);
  return undefined;
}

/** The 413 error of a body over `limit` bytes, declared or received. */
export function tooLargeError(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`the body is larger than ${limit} bytes`, { details: { limit } });
}

/**
 * Reads a body as UTF-8 text, stopping at `limit` bytes received (a lying or chunked client cannot
 * push more than the limit). Calls `done` once.
 */
function readTextBody(req: IncomingMessage, limit: number, done: (outcome: TextOutcome) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (outcome: TextOutcome): void => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    done(outcome);
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limit) {
      finish({ error: tooLargeError(limit) });
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => finish({ text: Buffer.concat(chunks, size).toString('utf8') });
  const onError = (e: Error): void => finish({ error: new MalformedBodyError(`the body could not be read: ${e.message}`) });
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}

/** readTextBody after checking the declared length, so an oversized body is refused unread. */
export function readLimitedText(req: IncomingMessage, limit: number, done: (outcome: TextOutcome) => void): void {
  if (Number(req.headers['content-length'] ?? NaN) > limit) {
    done({ error: tooLargeError(limit) });
    return;
  }
  readTextBody(req, limit, done);
}

/** Reads and parses a JSON body (see readTextBody). */
export function readJsonBody(req: IncomingMessage, limit: number, done: (outcome: BodyOutcome) => void): void {
  readTextBody(req, limit, (read) => {
    if ('error' in read) {
      done(read);
      return;
    }
    if (read.text.trim() === '') {
      done({ error: new MalformedBodyError('the body is empty; send a JSON object') });
      return;
    }
    try {
      done({ body: JSON.parse(read.text) as unknown });
    } catch (e) {
      done({ error: new MalformedBodyError(`the body is not valid JSON: ${(e as Error).message}`) });
    }
  });
}

/** Reads a JSON body with a hard byte limit into `req.body` (see bodyHeadersProblem and readJsonBody); for the Express routes. */
export function jsonBody(limit: number): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const settle = (outcome: BodyOutcome): void => {
      if ('body' in outcome) {
        req.body = outcome.body;
        next();
        return;
      }
      if (outcome.error instanceof PayloadTooLargeError) closeAfterAnswer(req, res);
      next(outcome.error);
    };
    const problem = bodyHeadersProblem(req, limit);
    if (problem !== undefined) {
      settle({ error: problem });
      return;
    }
    readJsonBody(req, limit, settle);
  };
}

/**
 * For the answer to an oversized body (413) or one that is not read to its end: the connection is
 * closed after the answer, and what is left of the body is drained meanwhile. Keeping it alive
 * would let a client make us read the whole body anyway, or stream on past the limit.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  req.resume();
}
