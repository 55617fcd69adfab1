import { Router, type Request, type Response } from 'express';
import { queryString } from '../http/query.ts';
import { PayloadTooLargeError, toErrorBody } from '../errors.ts';
import type { HitSources } from '../identity/visitor.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { Event } from './event.ts';
import { LIMITS, parsePixelHit } from './meta-pixel.ts';

export interface MetaPixelRouteOptions {
  /** Largest POST body accepted; a larger one is answered 413. */
  maxBytes: number;
  metrics: Metrics;
  /** Hands an accepted event on (see segment-routes.ts); must not block. */
  accept: (event: Event, hit: HitSources) => void;
  now?: () => Date;
}

/** 1×1 transparent GIF89a, 43 bytes: the answer to an image request (`<img>`, `new Image()`). */
export const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

const GIF_HEADERS = {
  'content-type': 'image/gif',
  'content-length': PIXEL_GIF.length,
  'cache-control': 'no-store, no-cache, must-revalidate, max-age=0',
  pragma: 'no-cache',
  expires: '0',
} as const;

/** Body types a beacon or form post of `k=v&...` arrives with. */
const FORM_TYPES = new Set(['', 'application/x-www-form-urlencoded', 'text/plain']);
const CLIENT = 'meta-pixel';

/**
 * `GET|POST /tr` (and `/tr/`) as fbevents.js sends them. The browser ignores the answer, so an
 * invalid hit is counted (`tagwarden_events_rejected_total{client="meta-pixel"}`) and answered like
 * a valid one: a GIF for GET, 204 for POST. Only a body over `maxBytes` gets an error (413 JSON).
 */
export function metaPixelRouter(opts: MetaPixelRouteOptions): Router {
  const router = Router();
  const now = opts.now ?? ((): Date => new Date());
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const rejected = incrementer(opts.metrics.eventsRejected, ['client', 'code']);

  const handle = (req: Request, res: Response, params: URLSearchParams | undefined): void => {
    if (params === undefined) {
      rejected([CLIENT, 'TW_ERR_VALIDATION']);
      return;
    }
    const r = parsePixelHit(params, { ip: req.ip, userAgent: req.headers['user-agent'], now: now() });
    if (!r.ok) {
      rejected([CLIENT, 'TW_ERR_VALIDATION']);
      return;
    }
    received([CLIENT, r.event.type]);
    const body: Record<string, unknown> = Object.fromEntries(params);
    if (r.event.anonymousId !== undefined) body.anonymousId = r.event.anonymousId;
    opts.accept(r.event, { headers: req.headers, query: params, body, response: res });
  };

  router.get('/tr', (req, res) => {
    handle(req, res, queryOf(req));
    res.writeHead(200, GIF_HEADERS);
    res.end(PIXEL_GIF);
  });

  router.post('/tr', (req, res, next) => {
    const query = queryOf(req);
    const ctype = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    const encoding = req.headers['content-encoding'];
    if (!FORM_TYPES.has(ctype) || (encoding !== undefined && encoding !== 'identity')) {
      // Not a form we read (multipart, gzip, ...): counted, drained unread, answered as usual.
      req.resume();
      handle(req, res, undefined);
      noContent(res);
      return;
    }
    readBody(req, opts.maxBytes, (err, text) => {
      if (err === 'too-large') {
        rejected([CLIENT, 'TW_ERR_PAYLOAD_TOO_LARGE']);
        const e = new PayloadTooLargeError(`the body is larger than ${opts.maxBytes} bytes`, { details: { limit: opts.maxBytes } });
        res.setHeader('connection', 'close');
        res.status(e.status).json(toErrorBody(e));
        return;
      }
      try {
        handle(req, res, err === 'failed' || query === undefined ? undefined : merge(text, query));
      } catch (e) {
        next(e);
        return;
      }
      noContent(res);
    });
  });
  return router;
}

function noContent(res: Response): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}

/** The hit's own query parameters; undefined when the query string is over the bound. */
function queryOf(req: Request): URLSearchParams | undefined {
  const raw = queryString(req);
  return raw.length > LIMITS.query ? undefined : new URLSearchParams(raw);
}

/** Body parameters first (they win at first-occurrence reading), then the query's. */
function merge(text: string, query: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams(text);
  for (const [k, v] of query) out.append(k, v);
  return out;
}

/**
 * Reads the body up to `limit` bytes, checking the declared length first and the received bytes
 * as they come (a lying or chunked client cannot push more); see src/http/body.ts.
 */
function readBody(req: Request, limit: number, done: (err: 'too-large' | 'failed' | undefined, text: string) => void): void {
  const tooLarge = (): void => {
    req.resume();
    done('too-large', '');
  };
  if (Number(req.headers['content-length'] ?? NaN) > limit) {
    tooLarge();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (err: 'too-large' | 'failed' | undefined): void => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    if (err === 'too-large') tooLarge();
    else done(err, err === undefined ? Buffer.concat(chunks, size).toString('utf8') : '');
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limit) finish('too-large');
    else chunks.push(chunk);
  };
  const onEnd = (): void => finish(undefined);
  const onError = (): void => finish('failed');
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}
