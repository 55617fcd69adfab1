/**
 * The hottest request Tagwarden serves, a valid single Segment event (`POST /v1/track` and the
 * other single-event routes), answered without going through Express. Express's routing, its
 * request/response decoration and its middleware chain cost about 20–30 µs of CPU per request on
 * the bench machine (docs/performance.md), as much as validating, deciding and rendering the hit.
 *
 * Only the ordinary case is taken here: an exact route path without a query string, an allowed
 * Host, an accepted content type and declared length, a body that parses and validates, and a
 * server not shutting down. Everything else goes to the Express app unchanged, with the body (or
 * the error reading it) already read handed over (`preloadBody`), so refusals, errors and their
 * JSON bodies come from the one implementation in segment-routes.ts and the middleware.
 * test/segment-fast-path.test.ts checks both paths answer alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp } from '../http/client-ip.ts';
import { bodyHeadersProblem, preloadBody, readJsonBody } from '../http/body.ts';
import { corsHeaders } from '../http/cors.ts';
import { normalizeHost } from '../proxy/host-guard.ts';
import type { HitSources } from '../identity/visitor.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { Event, EventType } from './event.ts';
import { parseSegmentEvent } from './segment.ts';
import { SINGLE_ROUTES, sendSuccess } from './segment-routes.ts';

export interface SegmentFastPathOptions {
  maxEventBytes: number;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
  trustProxyHops: number;
  metrics: Metrics;
  /** False once shutdown began: hits then take the Express route, which refuses them with 503. */
  accepting: () => boolean;
  /** As for segmentRouter: hands an accepted event on; throws to refuse it. */
  accept: (event: Event, hit: HitSources) => void;
  now?: () => Date;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

const NO_QUERY = new URLSearchParams();

/** Wraps the Express app: the ordinary single-event hit is answered here, anything else by `fallback`. */
export function withSegmentFastPath(opts: SegmentFastPathOptions, fallback: RequestListener): RequestListener {
  const routes = new Map<string, EventType>(Object.entries(SINGLE_ROUTES).map(([path, type]) => [`/v1/${path}`, type]));
  const hosts = new Set(opts.allowedHosts.map(normalizeHost));
  const cors = corsHeaders(opts.allowedOrigins);
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const now = opts.now ?? ((): Date => new Date());

  function hostAllowed(req: IncomingMessage): boolean {
    if (hosts.size === 0) return true;
    const host = req.headers.host;
    return host !== undefined && hosts.has(normalizeHost(host));
  }

  return (req, res) => {
    // An exact, known path is in origin form with nothing to traverse: the host guard's path
    // checks hold by construction.
    const type = req.method === 'POST' && req.url !== undefined ? routes.get(req.url) : undefined;
    if (type === undefined || !hostAllowed(req) || !opts.accepting() || bodyHeadersProblem(req, opts.maxEventBytes) !== undefined) {
      fallback(req, res);
      return;
    }
    readJsonBody(req, opts.maxEventBytes, (outcome) => {
      if (!('body' in outcome) || !opts.accepting()) {
        preloadBody(req, outcome);
        fallback(req, res);
        return;
      }
      const result = parseSegmentEvent(outcome.body, type, { ip: clientIp(req, opts.trustProxyHops), userAgent: req.headers['user-agent'], now: now() });
      if (!result.ok) {
        preloadBody(req, outcome);
        fallback(req, res);
        return;
      }
      cors(req, res);
      try {
        opts.accept(result.event, { headers: req.headers, query: NO_QUERY, body: outcome.body, response: res });
      } catch {
        // Refused after all (shutdown began in between): the Express route gives the answer.
        preloadBody(req, outcome);
        fallback(req, res);
        return;
      }
      received(['segment', type]);
      sendSuccess(res);
    });
  };
}
