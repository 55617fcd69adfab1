/**
 * The Segment routes on the fast path (src/ingest/fast-path.ts): a POST without a query string, an
 * accepted content type and length, and a body that parses and validates (for `/v1/batch`, every
 * event of it) is answered here; anything else is passed to segment-routes.ts with the body read.
 */
import { clientIp } from '../http/client-ip.ts';
import { bodyHeadersProblem, preloadBody, readJsonBody } from '../http/body.ts';
import { corsHeaders } from '../http/cors.ts';
import { incrementer } from '../observability/metrics.ts';
import type { Event } from './event.ts';
import type { FastHandler, HitFastPathOptions } from './fast-path.ts';
import { whenDurable, type AcceptedHit } from './hit-sink.ts';
import { sendErrorJson } from '../http/errors.ts';
import { parseSegmentEvent, type RequestFacts } from './segment.ts';
import { parseBatch, SINGLE_ROUTES, sendSuccess } from './segment-routes.ts';

const NO_QUERY = new URLSearchParams();

export function segmentFastRoutes(opts: HitFastPathOptions & { maxEventBytes: number; maxBatchBytes: number; maxBatchEvents: number; allowedOrigins: readonly string[] }): Map<string, FastHandler> {
  const cors = corsHeaders(opts.allowedOrigins);
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const now = opts.now ?? ((): Date => new Date());

  /**
   * One route: `parse` turns the body into the events to accept (with the body each came in), or
   * undefined when the Express route must answer (an invalid event, a partial batch report).
   */
  const route =
    (limit: number, parse: (body: unknown, facts: RequestFacts) => Array<{ event: Event; body: unknown }> | undefined): FastHandler =>
    (req, res, query, pass) => {
      if (req.method !== 'POST' || query !== '' || bodyHeadersProblem(req, limit) !== undefined) {
        pass();
        return;
      }
      readJsonBody(req, limit, (outcome) => {
        const accepted = 'body' in outcome && opts.accepting() ? parse(outcome.body, { ip: clientIp(req, opts.trustProxyHops), userAgent: req.headers['user-agent'], now: now() }) : undefined;
        if (accepted === undefined) {
          preloadBody(req, outcome);
          pass();
          return;
        }
        cors(req, res);
        const hits: AcceptedHit[] = [];
        try {
          for (const { event, body } of accepted) {
            hits.push(opts.accept(event, { headers: req.headers, query: NO_QUERY, body, response: res }));
            received(['segment', event.type]);
          }
        } catch {
          // Refused after all (shutdown began in between): the Express route gives the answer.
          preloadBody(req, outcome);
          pass();
          return;
        }
        whenDurable(opts, hits, () => sendSuccess(res), (err) => sendErrorJson(res, err));
      });
    };

  const routes = new Map<string, FastHandler>();
  for (const [path, type] of Object.entries(SINGLE_ROUTES)) {
    routes.set(
      `/v1/${path}`,
      route(opts.maxEventBytes, (body, facts) => {
        const result = parseSegmentEvent(body, type, facts);
        return result.ok ? [{ event: result.event, body }] : undefined;
      }),
    );
  }
  const batch = route(opts.maxBatchBytes, (body, facts) => {
    const parsed = parseBatch(body, facts, opts.maxBatchEvents);
    return 'error' in parsed || parsed.rejected.length > 0 ? undefined : parsed.accepted.map(({ event, item }) => ({ event, body: item }));
  });
  routes.set('/v1/batch', batch);
  routes.set('/v1/b', batch);
  return routes;
}
