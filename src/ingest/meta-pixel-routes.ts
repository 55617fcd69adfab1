import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError } from '../errors.ts';
import { closeAfterAnswer } from '../http/body.ts';
import type { HitRoute, HitTarget } from '../http/hit-router.ts';
import { incrementer } from '../observability/metrics.ts';
import { hitFacts, type HitRouteOptions } from './hit-route-options.ts';
import { whenDurable, type AcceptedHit } from './hit-sink.ts';
import { LIMITS, parsePixelHit } from './meta-pixel.ts';
import { readPixelBody, type PixelBodyOutcome } from './meta-pixel-body.ts';
import { paramHitSources } from './param-hit-sources.ts';

export interface MetaPixelRouteOptions extends HitRouteOptions {
  /** Largest POST body accepted; a larger one is answered 413. */
  maxBytes: number;
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
export function metaPixelRoutes(opts: MetaPixelRouteOptions): Map<string, HitRoute> {
  const facts = hitFacts(opts);
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const count = incrementer(opts.metrics.eventsRejected, ['client', 'code']);
  // fbevents.js never sees a refusal (it gets a GIF or 204 whatever): the metric and this line are
  // where it shows. `reason` is a code, never the hit's text (a parameter name is input too).
  const rejected = (code: string, reason: string, t: HitTarget): void => {
    count([CLIENT, code]);
    opts.refusals?.('warn', `${CLIENT}:${reason}`, { requestId: t.requestId, client: CLIENT, route: routeOf(t), code, reason }, 'hit refused');
  };

  /** The accepted hit, or none when it is refused (counted and logged here). */
  const handle = (req: IncomingMessage, res: ServerResponse, t: HitTarget, params: URLSearchParams | undefined): AcceptedHit[] => {
    if (params === undefined) {
      rejected('TW_ERR_VALIDATION', 'over_bounds', t);
      return [];
    }
    const r = parsePixelHit(params, facts(req));
    if (!r.ok) {
      rejected('TW_ERR_VALIDATION', r.code, t);
      return [];
    }
    const accepted = opts.accept(r.event, paramHitSources(req.headers, params, r.event, res));
    received([CLIENT, r.event.type]);
    return [accepted];
  };

  const answerPost = (req: IncomingMessage, res: ServerResponse, t: HitTarget, outcome: PixelBodyOutcome): void => {
    if ('error' in outcome && outcome.error instanceof PayloadTooLargeError) {
      rejected(outcome.error.code, 'too_large', t);
      closeAfterAnswer(req, res);
      t.fail(outcome.error);
      return;
    }
    if ('error' in outcome) {
      // Unreadable (a type not read, a cut or malformed multipart body): counted by its code. The
      // rest of the body is not counted any more, so the connection is closed after the answer,
      // as for a 413: a client cannot stream on past the size limit into a kept-alive socket.
      rejected(outcome.error.code, 'unreadable_body', t);
      closeAfterAnswer(req, res);
      noContent(res);
      return;
    }
    // The answer waits until the hit is kept; a hit that cannot be kept gets the error (503), not a 204.
    whenDurable(opts, handle(req, res, t, pixelParams(t.query, outcome.params)), () => noContent(res), t.fail);
  };

  const route: HitRoute = {
    GET: (req, res, t) => {
      whenDurable(
        opts,
        handle(req, res, t, pixelParams(t.query, undefined)),
        () => {
          res.writeHead(200, GIF_HEADERS);
          res.end(PIXEL_GIF);
        },
        t.fail,
      );
    },
    POST: (req, res, t) => {
      readPixelBody(req, opts.maxBytes, (outcome) => {
        try {
          answerPost(req, res, t, outcome);
        } catch (err) {
          t.fail(err); // refused by accept (shutdown began while the body arrived)
        }
      });
    },
  };
  return new Map([['/tr', route]]);
}

/** `/tr` or `/tr/`, as the hit was sent (the query string is the hit, never logged). */
function routeOf(t: HitTarget): string {
  return t.path.endsWith('/') ? '/tr/' : '/tr';
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
