import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { queryString } from '../http/query.ts';
import { tooLarge } from '../http/body.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { Event } from './event.ts';
import { DEFAULT_GA4_LIMITS, parseGa4Hits } from './ga4.ts';
import type { HitSources } from '../identity/visitor.ts';

export interface Ga4RouteOptions {
  /** Largest POST body read; a larger one is answered 413. */
  maxBytes: number;
  /** Hits per request (lines of a POST body); default 25. The rest are counted as rejected. */
  maxHits?: number;
  metrics: Metrics;
  /** Hands an accepted event on; must not block (delivery happens after the answer). */
  accept: (event: Event, hit: HitSources) => void;
  now?: () => Date;
}

/**
 * `GET|POST /g/collect`, as gtag.js sends it. gtag ignores the answer, so every request gets 204 at
 * once, whatever its hits were (invalid ones are counted); only a body over `maxBytes` gets a 413.
 */
export function ga4Router(opts: Ga4RouteOptions): Router {
  const router = Router();
  const now = opts.now ?? ((): Date => new Date());
  const limits = { ...DEFAULT_GA4_LIMITS, maxHits: opts.maxHits ?? DEFAULT_GA4_LIMITS.maxHits };
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);

  const handle = (req: Request, res: Response): void => {
    if (req.body === null) {
      opts.metrics.eventsRejected.inc({ client: 'ga4', code: 'TW_ERR_VALIDATION' });
      res.status(204).end();
      return;
    }
    const body = typeof req.body === 'string' ? req.body : undefined;
    const { hits, rejected } = parseGa4Hits(new URLSearchParams(queryString(req)), body, { ip: req.ip, userAgent: req.headers['user-agent'], now: now() }, limits);
    if (rejected > 0) opts.metrics.eventsRejected.inc({ client: 'ga4', code: 'TW_ERR_VALIDATION' }, rejected);
    for (const { event, params } of hits) {
      received(['ga4', event.type]);
      opts.accept(event, { headers: req.headers, query: params, body: { ...Object.fromEntries(params), anonymousId: event.anonymousId }, response: res });
    }
    res.status(204).end();
  };
  router.get('/g/collect', handle);
  router.post('/g/collect', textBody(opts.maxBytes), handle);
  return router;
}

/**
 * Reads the body as UTF-8 text whatever its declared type (gtag sends `text/plain` through
 * sendBeacon, or nothing), with the hard byte limit of src/http/body.ts: on the declared length
 * before reading and on the bytes received. An encoded (gzip...) body cannot be read: `req.body` is
 * then null and its hits are lost, not an error, since gtag would not act on one.
 */
function textBody(limit: number): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    req.body = undefined;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) {
      tooLarge(req, res, next, limit);
      return;
    }
    const encoding = req.headers['content-encoding'];
    const readable = encoding === undefined || encoding === 'identity';
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const cleanup = (): void => {
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        tooLarge(req, res, next, limit);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (done) return;
      cleanup();
      // null: a body was sent that cannot be read (its hits are lost and counted as one rejection).
      req.body = readable ? Buffer.concat(chunks, size).toString('utf8') : size > 0 ? null : undefined;
      next();
    };
    const onError = (): void => {
      if (done) return;
      cleanup();
      next();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  };
}



