import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError } from '../errors.ts';
import { closeAfterAnswer, readLimitedText } from '../http/body.ts';
import type { HitRoute, HitTarget } from '../http/hit-router.ts';
import { incrementer } from '../observability/metrics.ts';
import { DEFAULT_GA4_LIMITS, parseGa4Hits } from './ga4.ts';
import { hitFacts, type HitRouteOptions } from './hit-route-options.ts';
import { whenDurable, type AcceptedHit } from './hit-sink.ts';
import { paramHitSources } from './param-hit-sources.ts';

export interface Ga4RouteOptions extends HitRouteOptions {
  /** Largest POST body read; a larger one is answered 413. */
  maxBytes: number;
  /** Hits per request (lines of a POST body); default 25. The rest are counted as rejected. */
  maxHits?: number;
}

const CLIENT = 'ga4';
const ROUTE = '/g/collect';

/**
 * `GET|POST /g/collect`, as gtag.js sends it (server_container_url / transport_url pointed at this
 * domain). gtag ignores the answer, so every request gets 204 once its hits are kept, whatever
 * they were (invalid ones are counted and logged); only a body over `maxBytes` gets a 413.
 *
 * A POST body is read as UTF-8 text whatever its declared type (gtag sends `text/plain` through
 * sendBeacon, or nothing), within the limit on its declared length and on the bytes received. An
 * encoded (gzip...) body cannot be read: its hits are lost and counted as one rejection, not an
 * error, since gtag would not act on one. A body cut off by the client is not one either: the
 * request is the URL's hit.
 */
export function ga4Routes(opts: Ga4RouteOptions): Map<string, HitRoute> {
  const facts = hitFacts(opts);
  const limits = { ...DEFAULT_GA4_LIMITS, maxHits: opts.maxHits ?? DEFAULT_GA4_LIMITS.maxHits };
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const rejected = incrementer(opts.metrics.eventsRejected, ['client', 'code']);
  // gtag.js never sees a refusal (it gets 204 whatever): the log line and the metric are where it shows.
  const refused = (t: HitTarget, reason: string, hits: number): void => {
    opts.refusals?.('warn', `${CLIENT}:${reason}`, { requestId: t.requestId, client: CLIENT, route: ROUTE, code: 'TW_ERR_VALIDATION', reason, hits }, 'hit refused');
  };

  /** The hits of the query string and the body (`null`: a body that cannot be read), then 204. */
  const answer = (req: IncomingMessage, res: ServerResponse, t: HitTarget, body: string | null | undefined): void => {
    if (body === null) {
      rejected([CLIENT, 'TW_ERR_VALIDATION']);
      refused(t, 'unreadable_body', 1);
      res.writeHead(204).end();
      return;
    }
    const { hits, rejected: invalid, issues } = parseGa4Hits(new URLSearchParams(t.query), body, facts(req), limits);
    if (invalid > 0) {
      rejected([CLIENT, 'TW_ERR_VALIDATION'], invalid);
      const byCode = new Map<string, number>();
      for (const i of issues) byCode.set(i.code, (byCode.get(i.code) ?? 0) + 1);
      for (const [code, n] of byCode) refused(t, code, n);
    }
    const accepted: AcceptedHit[] = [];
    for (const { event, params } of hits) {
      accepted.push(opts.accept(event, paramHitSources(req.headers, params, event, res)));
      received([CLIENT, event.type]);
    }
    // 204 only once the hits are kept; a 503 otherwise (gtag.js does not retry, but the answer
    // never claims what will not be delivered).
    whenDurable(opts, accepted, () => res.writeHead(204).end(), t.fail);
  };

  const route: HitRoute = {
    GET: (req, res, t) => answer(req, res, t, undefined),
    POST: (req, res, t) => {
      readLimitedText(req, opts.maxBytes, (outcome) => {
        try {
          if (!('error' in outcome)) {
            const encoding = req.headers['content-encoding'];
            const readable = encoding === undefined || encoding === 'identity';
            answer(req, res, t, readable ? outcome.text : outcome.text !== '' ? null : undefined);
          } else if (outcome.error instanceof PayloadTooLargeError) {
            // The one refusal gtag.js can see (413); counted and logged like the others.
            rejected([CLIENT, outcome.error.code]);
            opts.refusals?.('warn', `${CLIENT}:too_large`, { requestId: t.requestId, client: CLIENT, route: ROUTE, code: outcome.error.code, reason: 'too_large' }, 'hit refused');
            closeAfterAnswer(req, res);
            t.fail(outcome.error);
          } else answer(req, res, t, undefined);
        } catch (err) {
          t.fail(err); // refused by accept (shutdown began while the body arrived)
        }
      });
    },
  };
  return new Map([[ROUTE, route]]);
}
