import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { queryString } from '../http/query.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { preloadedText, readLimitedText, refuseTooLarge, type TextOutcome } from '../http/body.ts';
import { PayloadTooLargeError } from '../errors.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import { DEFAULT_GA4_LIMITS, parseGa4Hits } from './ga4.ts';
import { whenDurable, type AcceptedHit, type HitSink } from './hit-sink.ts';
import { paramHitSources } from './param-hit-sources.ts';
import { sendErrorJson } from '../http/errors.ts';

export interface Ga4RouteOptions extends HitSink {
  /** Largest POST body read; a larger one is answered 413. */
  maxBytes: number;
  /** Hits per request (lines of a POST body); default 25. The rest are counted as rejected. */
  maxHits?: number;
  metrics: Metrics;
  now?: () => Date;
  /** Where refused hits are logged (warn, rate-limited); absent: not logged. */
  refusals?: RateLimitedLog;
}

/**
 * `GET|POST /g/collect`, as gtag.js sends it. gtag ignores the answer, so every request gets 204 at
 * once, whatever its hits were (invalid ones are counted); only a body over `maxBytes` gets a 413.
 */
export function ga4Router(opts: Ga4RouteOptions): Router {
  const router = Router();
  const answer = ga4Answer(opts);
  const handle = (req: Request, res: Response): void => {
    answer(queryString(req), req.body as string | null | undefined, req, req.ip, res);
  };
  router.get('/g/collect', handle);
  // A body over the limit is the one refusal gtag.js can see (413); counted and logged like the others.
  const tooLarge = (): void => {
    opts.metrics.eventsRejected.inc({ client: 'ga4', code: 'TW_ERR_PAYLOAD_TOO_LARGE' });
    opts.refusals?.('warn', 'ga4:too_large', { client: 'ga4', route: '/g/collect', code: 'TW_ERR_PAYLOAD_TOO_LARGE', reason: 'too_large' }, 'hit refused');
  };
  router.post('/g/collect', textBody(opts.maxBytes, tooLarge), handle);
  return router;
}

/**
 * What `/g/collect` does once the body is read (`null`: a body that cannot be read): parse the
 * hits, hand each on, answer 204. Shared by the Express route and the fast path (ga4-fast-path.ts).
 */
export function ga4Answer(opts: Ga4RouteOptions): (query: string, body: string | null | undefined, req: IncomingMessage, ip: string | undefined, res: ServerResponse) => void {
  const now = opts.now ?? ((): Date => new Date());
  const limits = { ...DEFAULT_GA4_LIMITS, maxHits: opts.maxHits ?? DEFAULT_GA4_LIMITS.maxHits };
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  // gtag.js never sees a refusal (it gets 204 whatever): the log line and the metric are where it shows.
  const refused = (reason: string, hits: number): void => {
    opts.refusals?.('warn', `ga4:${reason}`, { client: 'ga4', route: '/g/collect', code: 'TW_ERR_VALIDATION', reason, hits }, 'hit refused');
  };
  return (query, body, req, ip, res) => {
    if (body === null) {
      opts.metrics.eventsRejected.inc({ client: 'ga4', code: 'TW_ERR_VALIDATION' });
      refused('unreadable_body', 1);
      res.writeHead(204).end();
      return;
    }
    const { hits, rejected, issues } = parseGa4Hits(new URLSearchParams(query), body, { ip, userAgent: req.headers['user-agent'], now: now() }, limits);
    if (rejected > 0) opts.metrics.eventsRejected.inc({ client: 'ga4', code: 'TW_ERR_VALIDATION' }, rejected);
    if (rejected > 0) {
      const byCode = new Map<string, number>();
      for (const i of issues) byCode.set(i.code, (byCode.get(i.code) ?? 0) + 1);
      for (const [code, n] of byCode) refused(code, n);
    }
    const accepted: AcceptedHit[] = [];
    for (const { event, params } of hits) {
      accepted.push(opts.accept(event, paramHitSources(req.headers, params, event, res)));
      received(['ga4', event.type]);
    }
    // 204 only once the hits are kept; a 503 otherwise (gtag.js does not retry, but the answer
    // never claims what will not be delivered).
    whenDurable(opts, accepted, () => res.writeHead(204).end(), (err) => sendErrorJson(res, err));
  };
}

/**
 * Reads the body as UTF-8 text whatever its declared type (gtag sends `text/plain` through
 * sendBeacon, or nothing), with the hard byte limit of src/http/body.ts: on the declared length
 * before reading and on the bytes received. An encoded (gzip...) body cannot be read: `req.body` is
 * then null and its hits are lost, not an error, since gtag would not act on one.
 */
function textBody(limit: number, tooLarge: () => void): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    req.body = undefined;
    const settle = (outcome: TextOutcome): void => {
      if ('error' in outcome) {
        // A body cut off by the client is not an error: gtag would not act on one.
        if (outcome.error instanceof PayloadTooLargeError) {
          tooLarge();
          refuseTooLarge(req, res, next, outcome.error);
        } else next();
        return;
      }
      const encoding = req.headers['content-encoding'];
      const readable = encoding === undefined || encoding === 'identity';
      // null: a body was sent that cannot be read (its hits are lost and counted as one rejection).
      req.body = readable ? outcome.text : outcome.text !== '' ? null : undefined;
      next();
    };
    const preloaded = preloadedText(req);
    if (preloaded !== undefined) settle(preloaded);
    else readLimitedText(req, limit, settle);
  };
}
