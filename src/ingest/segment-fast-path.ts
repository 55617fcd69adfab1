/**
 * The Segment routes on the fast path (src/ingest/fast-path.ts): a POST without a query string, an
 * accepted content type and length, and a body that parses and validates (for `/v1/batch`, every
 * event of it) is answered here; anything else is passed to segment-routes.ts with the body read.
 */
import { clientIp } from '../http/client-ip.ts';
import { bodyHeadersProblem, preloadBody, readJsonBody } from '../http/body.ts';
import { corsHeaders } from '../http/cors.ts';
import type { HitSources } from '../identity/visitor.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { Event } from './event.ts';
import type { FastHandler } from './fast-path.ts';
import { parseSegmentEvent } from './segment.ts';
import { parseBatch, SINGLE_ROUTES, sendSuccess } from './segment-routes.ts';

export interface HitFastPathOptions {
  trustProxyHops: number;
  metrics: Metrics;
  /** False once shutdown began. */
  accepting: () => boolean;
  /** As for the Express routes: hands an accepted event on; throws to refuse it. */
  accept: (event: Event, hit: HitSources) => void;
  now?: () => Date;
}

const NO_QUERY = new URLSearchParams();

export function segmentFastRoutes(opts: HitFastPathOptions & { maxEventBytes: number; maxBatchBytes: number; maxBatchEvents: number; allowedOrigins: readonly string[] }): Map<string, FastHandler> {
  const cors = corsHeaders(opts.allowedOrigins);
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const now = opts.now ?? ((): Date => new Date());
  const routes = new Map<string, FastHandler>();
  for (const [path, type] of Object.entries(SINGLE_ROUTES)) {
    routes.set(`/v1/${path}`, (req, res, query, pass) => {
      if (req.method !== 'POST' || query !== '' || bodyHeadersProblem(req, opts.maxEventBytes) !== undefined) {
        pass();
        return;
      }
      readJsonBody(req, opts.maxEventBytes, (outcome) => {
        const result = 'body' in outcome && opts.accepting()
          ? parseSegmentEvent(outcome.body, type, { ip: clientIp(req, opts.trustProxyHops), userAgent: req.headers['user-agent'], now: now() })
          : undefined;
        if (!('body' in outcome) || result === undefined || !result.ok) {
          preloadBody(req, outcome);
          pass();
          return;
        }
        cors(req, res);
        try {
          opts.accept(result.event, { headers: req.headers, query: NO_QUERY, body: outcome.body, response: res });
        } catch {
          // Refused after all (shutdown began in between): the Express route gives the answer.
          preloadBody(req, outcome);
          pass();
          return;
        }
        received(['segment', type]);
        sendSuccess(res);
      });
    });
  }
  const batch: FastHandler = (req, res, query, pass) => {
    if (req.method !== 'POST' || query !== '' || bodyHeadersProblem(req, opts.maxBatchBytes) !== undefined) {
      pass();
      return;
    }
    readJsonBody(req, opts.maxBatchBytes, (outcome) => {
      const parsed = 'body' in outcome && opts.accepting()
        ? parseBatch(outcome.body, { ip: clientIp(req, opts.trustProxyHops), userAgent: req.headers['user-agent'], now: now() }, opts.maxBatchEvents)
        : undefined;
      // Anything but a batch of valid events (refusals, partial reports) is the Express route's to answer.
      if (!('body' in outcome) || parsed === undefined || 'error' in parsed || parsed.rejected.length > 0) {
        preloadBody(req, outcome);
        pass();
        return;
      }
      cors(req, res);
      try {
        for (const { event, item } of parsed.accepted) {
          opts.accept(event, { headers: req.headers, query: NO_QUERY, body: item, response: res });
          received(['segment', event.type]);
        }
      } catch {
        preloadBody(req, outcome);
        pass();
        return;
      }
      sendSuccess(res);
    });
  };
  routes.set('/v1/batch', batch);
  routes.set('/v1/b', batch);
  return routes;
}
