import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError, ValidationError, type TagwardenError } from '../errors.ts';
import { bodyHeadersProblem, closeAfterAnswer, readJsonBody } from '../http/body.ts';
import { corsPolicy } from '../http/cors.ts';
import { sendJson } from '../http/errors.ts';
import type { HitRoute, HitTarget } from '../http/hit-router.ts';
import { incrementer } from '../observability/metrics.ts';
import type { EventType, Event } from './event.ts';
import { hitFacts, type HitRouteOptions } from './hit-route-options.ts';
import { whenDurable, type AcceptedHit } from './hit-sink.ts';
import { parseSegmentEvent, type FieldIssue, type RequestFacts } from './segment.ts';
import { LIMITS } from './segment-limits.ts';

export interface SegmentRouteOptions extends HitRouteOptions {
  maxEventBytes: number;
  maxBatchBytes: number;
  maxBatchEvents: number;
  /** Origins whose pages may post hits (server.allowedOrigins; `*`: any). */
  allowedOrigins: readonly string[];
}

/** Segment's routes and the short forms analytics.js uses (https://github.com/segmentio/analytics-next). */
export const SINGLE_ROUTES: Readonly<Record<string, EventType>> = {
  track: 'track', t: 'track',
  page: 'page', p: 'page',
  identify: 'identify', i: 'identify',
  screen: 'screen', s: 'screen',
  group: 'group', g: 'group',
  alias: 'alias', a: 'alias',
};

/**
 * Segment's HTTP API routes (`/v1/track`, …, `/v1/batch` and their short forms), as analytics.js,
 * analytics-next and the server libraries call them: a JSON (or `text/plain`, sendBeacon's) body,
 * answered `{"success":true}` once its events are kept. Refusals: 415 for another body type or an
 * encoded body, 413 over the route's limit, 400 for a body that is not JSON or an event that does
 * not validate (`details.issues`), and for a batch with no valid event (`details.rejected`); a
 * batch with some invalid events is answered 200 with the report of those. Each refusal is counted
 * (`tagwarden_events_rejected_total{client="segment"}`) and logged (rate-limited), by field paths
 * and codes only, never with a value the body carried or the parser's message, which quotes it.
 */
export function segmentRoutes(opts: SegmentRouteOptions): Map<string, HitRoute> {
  const facts = hitFacts(opts);
  const cors = corsPolicy(opts.allowedOrigins);
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const rejected = incrementer(opts.metrics.eventsRejected, ['client', 'code']);
  const log = opts.refusals;

  /** An invalid event (of a single route, or a batch's with its index): its fields at fault. */
  const eventRefused = (t: HitTarget, issues: readonly FieldIssue[], item: unknown, index: number | undefined, status?: number): void => {
    if (log === undefined) return;
    const reason = refusalReason(issues);
    const fields = { requestId: t.requestId, ...refusalFields(t.path, reason, issues, item, index) };
    log('warn', `segment:${reason}`, status === undefined ? fields : { ...fields, status }, 'event refused');
  };

  /** A body refused as a whole (not read, not JSON, too large, not a batch): counted and logged by its code or fields. */
  const requestRefused = (req: IncomingMessage, res: ServerResponse, t: HitTarget, err: TagwardenError): void => {
    rejected(['segment', err.code]);
    const details = err.details as { issues?: unknown } | undefined;
    const issues = err instanceof ValidationError && Array.isArray(details?.issues) ? (details.issues as FieldIssue[]) : [];
    if (log !== undefined && issues.length > 0) {
      const reason = refusalReason(issues);
      log('warn', `segment:${reason}`, { requestId: t.requestId, ...refusalFields(t.path, reason, issues, undefined, undefined), status: err.status }, 'request refused');
    } else {
      log?.('warn', `segment:${err.code}`, { requestId: t.requestId, client: 'segment', route: t.path, status: err.status, code: err.code, reason: err.code }, 'request refused');
    }
    if (err instanceof PayloadTooLargeError) closeAfterAnswer(req, res);
    t.fail(err);
  };

  /** Accepts the request's valid events, then answers once they are kept (`ok`) or with why not. */
  const acceptAll = (req: IncomingMessage, res: ServerResponse, t: HitTarget, events: ReadonlyArray<{ event: Event; body: unknown }>, ok: () => void): void => {
    const query = t.query === '' ? NO_QUERY : new URLSearchParams(t.query);
    const hits: AcceptedHit[] = [];
    for (const { event, body } of events) {
      hits.push(opts.accept(event, { headers: req.headers, query, body, response: res }));
      received(['segment', event.type]);
    }
    whenDurable(opts, hits, ok, t.fail);
  };

  /** A POST of a JSON body within `limit`, handed to `answer` once read. */
  const post =
    (limit: number, answer: (req: IncomingMessage, res: ServerResponse, t: HitTarget, body: unknown) => void): HitRoute =>
    ({
      cors,
      POST: (req, res, t) => {
        const problem = bodyHeadersProblem(req, limit);
        if (problem !== undefined) {
          requestRefused(req, res, t, problem);
          return;
        }
        readJsonBody(req, limit, (outcome) => {
          if ('error' in outcome) {
            requestRefused(req, res, t, outcome.error);
            return;
          }
          try {
            answer(req, res, t, outcome.body);
          } catch (err) {
            t.fail(err); // refused by accept (shutdown began while the body arrived)
          }
        });
      },
    });

  const routes = new Map<string, HitRoute>();
  for (const [path, type] of Object.entries(SINGLE_ROUTES)) {
    routes.set(
      `/v1/${path}`,
      post(opts.maxEventBytes, (req, res, t, body) => {
        const result = parseSegmentEvent(body, type, facts(req));
        if (!result.ok) {
          rejected(['segment', 'TW_ERR_VALIDATION']);
          eventRefused(t, result.issues, body, undefined, 400);
          t.fail(new ValidationError(describe(result.issues), { details: { issues: result.issues } }));
          return;
        }
        acceptAll(req, res, t, [{ event: result.event, body }], () => sendSuccess(res));
      }),
    );
  }
  const batch = post(opts.maxBatchBytes, (req, res, t, body) => {
    const parsed = parseBatch(body, facts(req), opts.maxBatchEvents);
    if ('error' in parsed) {
      requestRefused(req, res, t, parsed.error);
      return;
    }
    const { accepted, rejected: refused } = parsed;
    if (refused.length > 0) {
      rejected(['segment', 'TW_ERR_VALIDATION'], refused.length);
      const items = (body as { batch: unknown[] }).batch;
      for (const r of refused) eventRefused(t, r.issues, items[r.index], r.index);
      if (accepted.length === 0) {
        t.fail(new ValidationError('no valid event in the batch', { details: { rejected: refused } }));
        return;
      }
    }
    acceptAll(
      req,
      res,
      t,
      accepted.map(({ event, item }) => ({ event, body: item })),
      () => (refused.length === 0 ? sendSuccess(res) : sendJson(res, 200, { success: true, accepted: accepted.length, rejected: refused })),
    );
  });
  routes.set('/v1/batch', batch);
  routes.set('/v1/b', batch);
  return routes;
}

/** The reason of a refusal, for its log line and rate limit: the fields at fault, e.g. `event,userId`. */
export function refusalReason(issues: readonly FieldIssue[]): string {
  const paths = [...new Set(issues.map((i) => (i.path === '' ? '(event)' : i.path)))].sort();
  return paths.join(',').slice(0, 200);
}

/** What a refusal's log line says: where and why, and the event's messageId; never a value it carried. */
function refusalFields(route: string, reason: string, issues: readonly FieldIssue[], item: unknown, index: number | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    client: 'segment',
    route,
    code: 'TW_ERR_VALIDATION',
    reason,
    issues: issues.slice(0, 10).map((i) => ({ path: i.path, message: i.message.slice(0, 200) })),
  };
  if (index !== undefined) fields.index = index;
  const messageId = item !== null && typeof item === 'object' ? (item as { messageId?: unknown }).messageId : undefined;
  if (typeof messageId === 'string' && messageId.length <= LIMITS.id) fields.messageId = messageId;
  return fields;
}

export interface ParsedBatch {
  accepted: { event: Event; item: unknown }[];
  rejected: { index: number; issues: FieldIssue[] }[];
}

/**
 * A `/v1/batch` body's events, each validated on its own with the batch's `context`,
 * `integrations` and `sentAt` as defaults; an error when the body is not a batch or holds too many events.
 * Shared by the route and /debug/explain.
 */
export function parseBatch(body: unknown, facts: RequestFacts, maxBatchEvents: number): ParsedBatch | { error: ValidationError } {
  if (body === null || typeof body !== 'object' || !Array.isArray((body as { batch?: unknown }).batch)) {
    return { error: new ValidationError('batch: required, an array of events', { details: { issues: [{ path: 'batch', message: 'required' }] } }) };
  }
  const { batch: items, context, integrations, sentAt } = body as { batch: unknown[]; context?: unknown; integrations?: unknown; sentAt?: unknown };
  if (items.length > maxBatchEvents) {
    return {
      error: new ValidationError(`batch: at most ${maxBatchEvents} events per request`, {
        details: { issues: [{ path: 'batch', message: `more than ${maxBatchEvents} events` }] },
      }),
    };
  }
  // A batch's sentAt that is not a date is ignored, as before it was used: it never refuses the events.
  const batchSentAt = typeof sentAt === 'string' && sentAt.length <= LIMITS.date && !Number.isNaN(Date.parse(sentAt)) ? sentAt : undefined;
  const defaults = { context: plainObject(context), integrations: plainObject(integrations), sentAt: batchSentAt };
  const accepted: ParsedBatch['accepted'] = [];
  const rejected: ParsedBatch['rejected'] = [];
  items.forEach((item, index) => {
    const r = parseSegmentEvent(item, undefined, facts, defaults);
    if (r.ok) accepted.push({ event: r.event, item });
    else rejected.push({ index, issues: r.issues });
  });
  return { accepted, rejected };
}

/** Shared by every hit without a query string; readers only call get(). */
const NO_QUERY = new URLSearchParams();

function plainObject(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function describe(issues: readonly FieldIssue[]): string {
  return issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; ');
}

const SUCCESS = '{"success":true}';

/**
 * The answer to an accepted hit: it is sent thousands of times a second. A string body, not a
 * Buffer: Node then writes the head and the body in one `write` instead of a corked `writev` of
 * two buffers (OutgoingMessage#_send).
 */
function sendSuccess(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': SUCCESS.length });
  res.end(SUCCESS, 'latin1');
}
