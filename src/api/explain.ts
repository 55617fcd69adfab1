import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Router } from 'express';
import { queryString } from '../http/query.ts';
import { PayloadTooLargeError, ValidationError } from '../errors.ts';
import { API_JSON_LIMITS, jsonBody, readJsonBody } from '../http/body.ts';
import { parseSegmentEvent } from '../ingest/segment.ts';
import { previewRequest, renderDropReason, type Evaluation, type Pipeline, type RuntimeDestination } from '../pipeline/index.ts';
import { bodyText } from '../destinations/types.ts';
import { reasonTexts } from '../policy/decide.ts';
import { modeChoiceText } from '../policy/jurisdiction.ts';
import { readSignals, type SignalReading } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import type { HitSources } from '../identity/visitor.ts';
import { withClickIds } from '../identity/click-ids.ts';
import type { Event } from '../ingest/event.ts';
import { jsonBytes, rawHitOf, readRawHit } from './explain-hit.ts';
import { requireAdminKey, type AdminAuthOptions } from './admin-auth.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

/** What explaining needs: the route's limits (config `server`), the app's pipeline and destinations, and how signals are read. */
export interface ExplainOptions {
  maxEventBytes: number;
  maxBatchBytes: number;
  maxBatchEvents: number;
  maxHeaderBytes: number;
  pipeline: Pipeline;
  destinations: readonly RuntimeDestination[];
  identity: SignalReading;
}

/**
 * What explain reads from the explain request itself: in the first form, the event's consent
 * signals (headers, query string); in both, the client's address.
 */
export interface ExplainRequest {
  headers: IncomingHttpHeaders;
  /** The raw query string, without `?` ('' when none). */
  query: string;
  ip: string | undefined;
}

/**
 * `POST /debug/explain`: runs a hit through consent, policy and the templates and answers, per
 * destination, the decision, its reasons and the vendor request that would be sent (secrets
 * masked). Nothing is sent and nothing is counted. The body is either a Segment event (its signals
 * read from the explain request's own headers and query), or `{"hit": {method, path, query,
 * headers, body}}`: a raw request of any client, read by that client's route code
 * (explain-hit.ts), each of its hits explained.
 */
export function explainRouter(
  opts: ExplainOptions & {
    adminKey: string;
    /** Throttling of wrong admin keys per client address (src/api/admin-auth.ts). */
    adminAuth?: AdminAuthOptions;
    /** The time an explained hit is received at (the app's consent clock); default the system clock. */
    clock?: Clock;
  },
): Router {
  const router = Router();
  const clock = opts.clock ?? systemClock;
  router.post('/debug/explain', requireAdminKey(opts.adminKey, opts.adminAuth), jsonBody(explainBodyLimit(opts)), (req, res, next) => {
    explainBody(opts, req.body, { headers: req.headers, query: queryString(req), ip: req.ip }, new Date(clock.now()))
      .then((answer) => {
        res.json(answer);
      })
      .catch(next);
  });
  return router;
}

/** The largest explain body: the envelope of a raw hit carries a whole batch or GA4 body (escaped as JSON text). */
export function explainBodyLimit(opts: Pick<ExplainOptions, 'maxEventBytes' | 'maxBatchBytes'>): number {
  return Math.max(opts.maxEventBytes, opts.maxBatchBytes) * 2;
}

/**
 * An explain body held in memory (`tagwarden explain <file>`), read as the route reads its
 * request's: readJsonBody with the same limit, shape bounds and strict UTF-8.
 */
export function readExplainBody(bytes: Buffer, opts: Pick<ExplainOptions, 'maxEventBytes' | 'maxBatchBytes'>): Promise<unknown> {
  const req = Object.assign(Readable.from([bytes]), { headers: {} }) as unknown as IncomingMessage;
  return new Promise((resolve, reject) => {
    readJsonBody(req, explainBodyLimit(opts), (outcome) => ('error' in outcome ? reject(outcome.error) : resolve(outcome.body)), { shape: API_JSON_LIMITS, fatalUtf8: true });
  });
}

/**
 * The answer of `POST /debug/explain` to `body`, received at `at`: the route's and the CLI's
 * (`tagwarden explain`) one implementation. Throws the error the route answers (a 400, a 413).
 */
export async function explainBody(opts: ExplainOptions, body: unknown, request: ExplainRequest, at: Date): Promise<Record<string, unknown>> {
  /** One accepted hit, as the pipeline would take it (click ids added as the accept step does, src/pipeline/accept.ts). */
  const explain = (event: Event, sources: HitSources): Record<string, unknown> => {
    const signals = readSignals(sources, event, opts.identity);
    const withIds = withClickIds(event, at);
    const { consent, evaluations, dataControl } = opts.pipeline.evaluate(withIds, signals);
    return {
      event: withIds,
      visitor: signals.visitor,
      consent: consentView(consent),
      // The mode the hit was decided in, and why (site.jurisdiction: the region in its geo header).
      dataControl: { ...dataControl, why: modeChoiceText(dataControl) },
      destinations: evaluations.map((ev, i) => destinationView(ev, opts.destinations[i]!)),
    };
  };

  if (body !== null && typeof body === 'object' && !Array.isArray(body) && Object.hasOwn(body, 'hit')) {
    const envelope = body as Record<string, unknown>;
    const extra = Object.keys(envelope).find((k) => k !== 'hit');
    if (extra !== undefined) throw new ValidationError(`${extra}: unknown key (a raw hit is {"hit": {...}} alone)`, { details: { issues: [{ path: extra, message: 'unknown key' }] } });
    const limits = { maxEventBytes: opts.maxEventBytes, maxBatchBytes: opts.maxBatchBytes, maxBatchEvents: opts.maxBatchEvents, maxHeaderBytes: opts.maxHeaderBytes };
    const hit = rawHitOf(envelope.hit, limits);
    const { client, hits, rejected } = await readRawHit(hit, { ip: request.ip, now: at }, limits);
    if (hits.length === 0) {
      const first = rejected[0];
      const why = first?.reason ?? first?.issues?.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; ') ?? 'nothing to read';
      throw new ValidationError(`no valid ${client} hit: ${why}`, { details: { client, rejected } });
    }
    return { client, hits: hits.map((h) => ({ index: h.index, ...explain(h.event, h.sources) })), rejected };
  }
  if (jsonBytes(body) > opts.maxEventBytes) throw new PayloadTooLargeError(`the event is larger than ${opts.maxEventBytes} bytes`);
  const routeType = body !== null && typeof body === 'object' && (body as Record<string, unknown>).type === undefined ? 'track' : undefined;
  const ua = request.headers['user-agent'];
  const parsed = parseSegmentEvent(body, routeType, { ip: request.ip, userAgent: typeof ua === 'string' ? ua : undefined, now: at });
  if (!parsed.ok) throw new ValidationError('invalid event', { details: { issues: parsed.issues } });
  // The explain request's own headers and query carry the signals (Sec-GPC, cookies, gdpr_consent,
  // gcs/gcd), so an operator can replay what a browser sent.
  return explain(parsed.event, { headers: request.headers, query: new URLSearchParams(request.query), body });
}

function destinationView(ev: Evaluation, dest: RuntimeDestination): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: ev.destinationId,
    template: dest.bound.templateId,
    decision: ev.decision.outcome,
    reasons: reasonTexts(ev.decision),
  };
  if (ev.decision.redactions.length > 0) out.redactions = ev.decision.redactions;
  if (dest.dryRun) out.dryRun = true;
  // Which field broke the vendor rule named in `reasons` (its path, never its value).
  if (ev.vendorRule !== undefined) out.vendorRule = ev.vendorRule;
  const r = ev.rendered;
  if (r === undefined) return out;
  if (!r.ok) {
    out.decision = 'drop';
    out.reasons = [...reasonTexts(ev.decision), renderDropReason(r)];
    if (r.kind === 'error') out.error = { code: (r.error as { code?: string }).code ?? 'TW_ERR_RENDER', message: r.error.message };
    return out;
  }
  const request = previewRequest(dest.bound, r);
  out.request = { ...request, body: request.body === undefined ? undefined : safeJson(bodyText(request) ?? '') };
  return out;
}

/** A time as ISO 8601 when it can be one (a year beyond 275760 cannot). */
function isoOrNumber(ms: number): string | number {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? ms : d.toISOString();
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The consent state as JSON: the decoded TCF string summarised (its model holds functions and Sets). */
function consentView(consent: ConsentState): Record<string, unknown> {
  const out: Record<string, unknown> = { categories: consent.categories, gpc: consent.gpc ?? false };
  // Signals whose clock was ahead of the hit by more than site.consentClockSkewMs: they counted
  // as of the hit's arrival, no later (issue 13).
  if (consent.bounded !== undefined) {
    out.bounded = consent.bounded.map((b) => ({ source: b.source, categories: b.categories, at: isoOrNumber(b.at), boundedTo: isoOrNumber(b.boundedTo), note: 'dated after the hit arrived: counted as of its arrival, and a grant never overrides a denial' }));
  }
  const tcf = consent.tcf;
  if (tcf !== undefined) {
    const view: Record<string, unknown> = { applies: tcf.applies };
    if (tcf.source !== undefined) view.source = tcf.source;
    if (tcf.result !== undefined) {
      if (tcf.result.ok) {
        const t = tcf.result.tcf;
        view.valid = true;
        view.policyVersion = t.policyVersion;
        view.cmpId = t.cmpId;
        view.lastUpdated = t.lastUpdated.toISOString();
        view.purposeConsents = [...t.purposeConsents].sort((a, b) => a - b);
        view.purposeLegitimateInterests = [...t.purposeLegitimateInterests].sort((a, b) => a - b);
      } else {
        view.valid = false;
        view.reason = tcf.result.reason;
      }
    }
    out.tcf = view;
  }
  return out;
}
