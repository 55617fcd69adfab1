import type { ServerResponse } from 'node:http';
import { Router, type ErrorRequestHandler, type NextFunction, type Request, type Response } from 'express';
import { queryString } from '../http/query.ts';
import { TagwardenError, ValidationError } from '../errors.ts';
import { jsonBody } from '../http/body.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import type { EventType, Event } from './event.ts';
import { parseSegmentEvent, type FieldIssue, type RequestFacts } from './segment.ts';
import { LIMITS } from './segment-fast.ts';
import { whenDurable, type AcceptedHit, type HitSink } from './hit-sink.ts';

export interface SegmentRouteOptions extends HitSink {
  maxEventBytes: number;
  maxBatchBytes: number;
  maxBatchEvents: number;
  metrics: Metrics;
  now?: () => Date;
  /** Where refusals are logged (warn, rate-limited); absent: not logged. */
  refusals?: RateLimitedLog;
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

export function segmentRouter(opts: SegmentRouteOptions): Router {
  const router = Router();
  const now = opts.now ?? ((): Date => new Date());
  const received = incrementer(opts.metrics.eventsReceived, ['client', 'type']);
  const facts = (req: Request): RequestFacts => ({ ip: req.ip, userAgent: req.headers['user-agent'], now: now() });
  const refused = (route: string, issues: readonly FieldIssue[], item: unknown, index?: number): void => {
    if (opts.refusals === undefined) return;
    const reason = refusalReason(issues);
    opts.refusals('warn', `segment:${reason}`, refusalFields(route, reason, issues, item, index), 'event refused');
  };

  for (const [path, type] of Object.entries(SINGLE_ROUTES)) {
    router.post(`/v1/${path}`, jsonBody(opts.maxEventBytes), (req, res, next) => {
      const result = parseSegmentEvent(req.body, type, facts(req));
      if (!result.ok) {
        opts.metrics.eventsRejected.inc({ client: 'segment', code: 'TW_ERR_VALIDATION' });
        throw new ValidationError(describe(result.issues), { details: { issues: result.issues } });
      }
      const accepted = opts.accept(result.event, { headers: req.headers, query: queryOf(req), body: req.body as unknown, response: res });
      received(['segment', type]);
      whenDurable(opts, [accepted], () => sendSuccess(res), next);
    });
  }

  const batch = (req: Request, res: Response, next: NextFunction): void => {
    const parsed = parseBatch(req.body as unknown, facts(req), opts.maxBatchEvents);
    if ('error' in parsed) throw parsed.error;
    const { accepted, rejected } = parsed;
    if (rejected.length > 0) opts.metrics.eventsRejected.inc({ client: 'segment', code: 'TW_ERR_VALIDATION' }, rejected.length);
    const items = (req.body as { batch: unknown[] }).batch;
    for (const r of rejected) refused(req.path, r.issues, items[r.index], r.index);
    if (accepted.length === 0 && rejected.length > 0) {
      throw new ValidationError('no valid event in the batch', { details: { rejected } });
    }
    const query = queryOf(req);
    const hits: AcceptedHit[] = [];
    for (const { event, item } of accepted) {
      hits.push(opts.accept(event, { headers: req.headers, query, body: item, response: res }));
      received(['segment', event.type]);
    }
    whenDurable(
      opts,
      hits,
      () => {
        if (rejected.length === 0) sendSuccess(res);
        else res.status(200).json({ success: true, accepted: accepted.length, rejected });
      },
      next,
    );
  };
  router.post('/v1/batch', jsonBody(opts.maxBatchBytes), batch);
  router.post('/v1/b', jsonBody(opts.maxBatchBytes), batch);
  router.use(logRequestRefusal(opts.refusals, opts.metrics));
  return router;
}

/**
 * A request answered 4xx is logged here: an invalid event on a single route (with its issues and
 * messageId), or a body refused as a whole (not JSON, too large, of the wrong type, not a batch),
 * by its code only, never with the body or the parser's message, which quotes it. The events of a
 * batch refused one by one were each logged by the batch route already.
 */
function logRequestRefusal(refusals: RateLimitedLog | undefined, metrics: Metrics): ErrorRequestHandler {
  return (err: unknown, req, _res, next) => {
    if (err instanceof TagwardenError && err.status < 500) {
      const details = err.details as { issues?: unknown; rejected?: unknown } | undefined;
      const issues = err instanceof ValidationError && Array.isArray(details?.issues) ? (details.issues as FieldIssue[]) : [];
      // On a single route the body is the event; on the batch route, the batch itself was refused.
      const single = req.path !== '/v1/batch' && req.path !== '/v1/b';
      // A body refused as a whole is counted here (an invalid event, or a batch's, by its route).
      if (details?.rejected === undefined && (issues.length === 0 || !single)) metrics.eventsRejected.inc({ client: 'segment', code: err.code });
      if (refusals !== undefined && details?.rejected === undefined) {
        if (issues.length > 0) {
          const reason = refusalReason(issues);
          const fields = refusalFields(req.path, reason, issues, single ? req.body : undefined, undefined);
          refusals('warn', `segment:${reason}`, { ...fields, status: err.status }, single ? 'event refused' : 'request refused');
        } else {
          refusals('warn', `segment:${err.code}`, { client: 'segment', route: req.path, status: err.status, code: err.code, reason: err.code }, 'request refused');
        }
      }
    }
    next(err);
  };
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
 * Shared by the Express route and the fast path (segment-fast-path.ts).
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

function queryOf(req: Request): URLSearchParams {
  const q = queryString(req);
  return q === '' ? NO_QUERY : new URLSearchParams(q);
}

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
export function sendSuccess(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': SUCCESS.length });
  res.end(SUCCESS, 'latin1');
}
