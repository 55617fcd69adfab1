import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { MalformedBodyError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError, type TagwardenError } from '../errors.ts';

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

/** `TextDecoder` that throws on bytes that are not UTF-8 (`ignoreBOM: false` drops a leading BOM, as JSON.parse could not read it anyway). */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a body as UTF-8 text, stopping at `limit` bytes received (a lying or chunked client cannot
 * push more than the limit). Calls `done` once. `fatalUtf8`: bytes that are not UTF-8 are a 400
 * instead of silently becoming U+FFFD (two different byte strings must never read as one text).
 */
function readTextBody(req: IncomingMessage, limit: number, done: (outcome: TextOutcome) => void, fatalUtf8 = false): void {
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
  const onEnd = (): void => {
    const bytes = Buffer.concat(chunks, size);
    if (!fatalUtf8) {
      finish({ text: bytes.toString('utf8') });
      return;
    }
    try {
      finish({ text: strictUtf8.decode(bytes) });
    } catch {
      finish({ error: new MalformedBodyError('the body is not valid UTF-8') });
    }
  };
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

/** Bounds of a JSON body's shape, checked on the text before it is parsed. */
export interface JsonShapeLimits {
  /** Deepest nesting of arrays and objects (the top-level value is depth 1). */
  maxDepth: number;
  /** Most array elements and object members in the whole body, counted together. */
  maxNodes: number;
}

/**
 * The API's bounds: 64 levels is far beyond any seed's body (they nest a few levels: Seeka's
 * `consent.privacy.tcfConsentString`, Bloomreach's `properties`) and keeps every recursive walk that follows (payload hashing, zod, the audit
 * record's canonical JSON) well inside the stack; 100,000 members bounds the work of one body of
 * at most `api.maxBodyBytes` (a 1 MiB `[0,0,0,…]` would otherwise be 500,000 values).
 */
export const API_JSON_LIMITS: JsonShapeLimits = Object.freeze({ maxDepth: 64, maxNodes: 100_000 });

/**
 * Why JSON text is too deep or too large in members, or undefined. One pass over the characters
 * without recursion (so no input can overflow the stack here): brackets outside strings change
 * the depth, commas outside strings count members. The text is not validated as JSON here;
 * JSON.parse does that afterwards, and it can only find fewer levels than the brackets counted.
 */
export function jsonShapeProblem(text: string, limits: JsonShapeLimits): TagwardenError | undefined {
  let depth = 0;
  let nodes = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped, whatever it is
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      // [ or {: a new level, and (if not empty) its first member; commas count the rest.
      if (++depth > limits.maxDepth) {
        return new ValidationError(`the body is nested deeper than ${limits.maxDepth} levels (depth)`, { details: { issues: [{ path: 'depth', message: `at most ${limits.maxDepth} levels of arrays and objects` }], limit: limits.maxDepth } });
      }
      nodes++;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c) nodes++;
    if (nodes > limits.maxNodes) {
      return new ValidationError(`the body has more than ${limits.maxNodes} array elements and object members (members)`, { details: { issues: [{ path: 'members', message: `at most ${limits.maxNodes} in one body` }], limit: limits.maxNodes } });
    }
  }
  return undefined;
}

export interface JsonReadOptions {
  /** Shape bounds checked before parsing; none when absent. */
  shape?: JsonShapeLimits;
  /** Bytes that are not UTF-8 → 400 (see readTextBody). */
  fatalUtf8?: boolean;
}

/** Reads and parses a JSON body (see readTextBody), its shape checked first when `o.shape` is given. */
export function readJsonBody(req: IncomingMessage, limit: number, done: (outcome: BodyOutcome) => void, o: JsonReadOptions = {}): void {
  readTextBody(
    req,
    limit,
    (read) => {
      if ('error' in read) {
        done(read);
        return;
      }
      if (read.text.trim() === '') {
        done({ error: new MalformedBodyError('the body is empty; send a JSON object') });
        return;
      }
      const problem = o.shape === undefined ? undefined : jsonShapeProblem(read.text, o.shape);
      if (problem !== undefined) {
        done({ error: problem });
        return;
      }
      try {
        done({ body: JSON.parse(read.text) as unknown });
      } catch (e) {
        done({ error: new MalformedBodyError(`the body is not valid JSON: ${(e as Error).message}`) });
      }
    },
    o.fatalUtf8 ?? false,
  );
}

/**
 * Reads a JSON body with a hard byte limit into `req.body` (see bodyHeadersProblem and
 * readJsonBody); for the Express routes (/api/v1 and /debug). The shape is bounded before parsing
 * (nesting depth, members; API_JSON_LIMITS by default) and the bytes must be UTF-8: issue 13 found
 * a body nested 5,000 deep overflowing the stack of the payload hash (a 500).
 */
export function jsonBody(limit: number, shape: JsonShapeLimits = API_JSON_LIMITS): RequestHandler {
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
    readJsonBody(req, limit, settle, { shape, fatalUtf8: true });
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
