import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router } from 'express';
import { queryString } from '../http/query.ts';
import { PayloadTooLargeError, type TagwardenError } from '../errors.ts';
import { whenDurable, type AcceptedHit, type HitSink } from './hit-sink.ts';
import { paramHitSources } from './param-hit-sources.ts';
import { sendErrorJson } from '../http/errors.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import { LIMITS, parsePixelHit } from './meta-pixel.ts';
import { preloadedPixelBody, readPixelBody, type PixelBodyOutcome } from './meta-pixel-body.ts';

export interface MetaPixelRouteOptions extends HitSink {
  /** Largest POST body accepted; a larger one is answered 413. */
  maxBytes: number;
  metrics: Metrics;
  /** Where refusals are logged (warn, rate-limited; see segment-routes.ts); absent: not logged. */
  refusals?: RateLimitedLog;
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

const CLIENT = 'meta-pixel';

/**
 * `GET|POST /tr` (and `/tr/`) as fbevents.js sends them: a query string, or a POST body that is a
 * urlencoded form, beacon text or multipart/form-data (meta-pixel-body.ts). The browser ignores the
 * answer, so an invalid hit or an unreadable body is counted
 * (`tagwarden_events_rejected_total{client="meta-pixel",code}`) and answered like a valid hit: a GIF
 * for GET, 204 for POST. Only a body over `maxBytes` gets an error (413 JSON).
 */
export function metaPixelRouter(opts: MetaPixelRouteOptions): Router {
  const router = Router();
  const { answerGet, answerPost } = pixelAnswers(opts);

  router.get('/tr', (req, res) => {
    answerGet(req, req.ip, res, queryString(req));
  });

  router.post('/tr', (req, res, next) => {
    const query = queryString(req);
    const settle = (outcome: PixelBodyOutcome): void => {
      try {
        answerPost(req, req.ip, res, query, outcome);
      } catch (e) {
        next(e);
      }
    };
    const preloaded = preloadedPixelBody(req);
    if (preloaded !== undefined) settle(preloaded);
    else readPixelBody(req, opts.maxBytes, settle);
  });
  return router;
}

/**
 * What /tr does with a hit once read, shared by the Express routes and the fast path
 * (meta-pixel-fast-path.ts): `answerGet` answers an image request, `answerPost` a POST body (or
 * the error reading it). Both throw when the hit is refused (shutdown), before answering.
 */
export function pixelAnswers(opts: MetaPixelRouteOptions): {
  answerGet: (req: IncomingMessage, ip: string | undefined, res: ServerResponse, query: string) => void;
  answerPost: (req: IncomingMessage, ip: string | undefined, res: ServerResponse, query: string, body: PixelBodyOutcome) => void;
} {
  const now = opts.now ?? ((): Date => new Date());
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const count = incrementer(opts.metrics.eventsRejected, ['client', 'code']);
  // fbevents.js never sees a refusal (it gets a GIF or 204 whatever): the metric and this line are
  // where it shows. `reason` is a code, never the hit's text (a parameter name is input too).
  const rejected = (code: string, reason: string, route: string): void => {
    count([CLIENT, code]);
    opts.refusals?.('warn', `${CLIENT}:${reason}`, { client: CLIENT, route, code, reason }, 'hit refused');
  };

  /** The accepted hit, or none when it is refused (counted and logged here). */
  const handle = (req: IncomingMessage, ip: string | undefined, res: ServerResponse, params: URLSearchParams | undefined): AcceptedHit[] => {
    if (params === undefined) {
      rejected('TW_ERR_VALIDATION', 'over_bounds', routeOf(req));
      return [];
    }
    const r = parsePixelHit(params, { ip, userAgent: req.headers['user-agent'], now: now() });
    if (!r.ok) {
      rejected('TW_ERR_VALIDATION', r.code, routeOf(req));
      return [];
    }
    const accepted = opts.accept(r.event, paramHitSources(req.headers, params, r.event, res));
    received([CLIENT, r.event.type]);
    return [accepted];
  };
  // The answer waits until the hit is kept; a hit that cannot be kept gets the error (503), not a GIF.
  const fail = (res: ServerResponse) => (err: TagwardenError): void => sendErrorJson(res, err);

  return {
    answerGet(req, ip, res, query) {
      whenDurable(
        opts,
        handle(req, ip, res, pixelParams(query, undefined)),
        () => {
          res.writeHead(200, GIF_HEADERS);
          res.end(PIXEL_GIF);
        },
        fail(res),
      );
    },
    answerPost(req, ip, res, query, outcome) {
      if ('error' in outcome && outcome.error instanceof PayloadTooLargeError) {
        rejected(outcome.error.code, 'too_large', routeOf(req));
        req.resume();
        res.setHeader('connection', 'close');
        sendErrorJson(res, outcome.error);
        return;
      }
      if ('error' in outcome) {
        // Unreadable (a type not read, a cut or malformed multipart body): counted by its code. The
        // rest of the body is not counted any more, so the connection is closed after the answer,
        // as for a 413: a client cannot stream on past the size limit into a kept-alive socket.
        rejected(outcome.error.code, 'unreadable_body', routeOf(req));
        req.resume();
        res.setHeader('connection', 'close');
        noContent(res);
        return;
      }
      whenDurable(opts, handle(req, ip, res, pixelParams(query, outcome.params)), () => noContent(res), fail(res));
    },
  };
}

/** `/tr` or `/tr/`, without the query string (which is the hit). */
function routeOf(req: IncomingMessage): string {
  return (req.url ?? '/tr').split('?', 1)[0]!.endsWith('/') ? '/tr/' : '/tr';
}

function noContent(res: ServerResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}

/**
 * A hit's parameters: those of its POST body (when given) first, then the query string's;
 * undefined when the query string is over the bound. Shared with /debug/explain.
 */
export function pixelParams(query: string, body: URLSearchParams | undefined): URLSearchParams | undefined {
  if (query.length > LIMITS.query) return undefined;
  const params = new URLSearchParams(query);
  return body === undefined ? params : merge(body, params);
}

/** Body parameters first (they win at first-occurrence reading), then the query's. */
function merge(body: URLSearchParams, query: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams(body);
  for (const [k, v] of query) out.append(k, v);
  return out;
}
