/**
 * Every route under /api/v1, as the OpenAPI document (./document.ts) describes it: one entry per
 * (method, path), with the zod schemas the route itself parses its query, path and body with.
 * test/openapi.test.ts compares this list with the routes the consent API actually mounts, both
 * ways: a route added without an entry here (or an entry without its route) fails it.
 *
 * Adding a route is one line: `op('get', '/api/v1/things/:id', 'consent:read', 'Summary', { params, query, body, ok, errors })`.
 * Paths are written as Express writes them (`:param`); the document turns them into `{param}`.
 */
import type { z } from 'zod';
import { auditQuerySchema } from '../consent/audit-routes.ts';
import { receiptQuerySchema } from '../consent/receipt-routes.ts';
import { expireSchema } from '../consent/expire-routes.ts';
import { pushSchema } from '../consent/inputs.ts';
import { checkQuery, subjectParams, verifyQuery } from '../consent/read-routes.ts';
import { subscriptionSchema } from '../consent/webhook-routes.ts';
import { deadBodySchema, deadListSchema } from '../dead-letters/filter.ts';
import type { Scope } from '../keys.ts';
import { previewStartSchema } from '../../preview/routes.ts';
import * as S from './schemas.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A request body: JSON validated by a zod schema, or a text format described in words. */
export type BodySpec = { json: z.ZodType } | { text: string; description: string };

/** One answer: a JSON schema, or another media type described in words (`schema` absent: no body). */
export interface AnswerSpec {
  status: number;
  description: string;
  json?: z.ZodType;
  /** A non-JSON answer: media type → description (NDJSON, CSV). */
  other?: Record<string, string>;
}

export interface RouteSpec {
  /** The route's path parameters (default: each a string). */
  params?: z.ZodType;
  /** The schema the route parses `req.query` with. */
  query?: z.ZodType;
  body?: BodySpec;
  /** Successful answers (default: 200 without a described body). */
  ok?: AnswerSpec | AnswerSpec[];
  /** Error statuses beyond those the document derives (auth, validation, limits, shutdown). */
  errors?: number[];
  description?: string;
}

export interface ApiRoute extends RouteSpec {
  method: Method;
  /** As Express mounts it, `:param` and all. */
  path: string;
  /** The API key scope it needs; null: no key (public). */
  scope: Scope | null;
  summary: string;
}

export function op(method: Method, path: string, scope: Scope | null, summary: string, spec: RouteSpec = {}): ApiRoute {
  return { method, path, scope, summary, ...spec };
}

const ok = (json: z.ZodType, description = 'OK', status = 200): AnswerSpec => ({ status, description, json });
const json = (schema: z.ZodType): BodySpec => ({ json: schema });

export const API_ROUTES: readonly ApiRoute[] = [
  // Writes (src/api/consent/write-routes.ts)
  op('post', '/api/v1/consent', 'consent:write', 'Push consent for a visitor and/or a user (Tagwarden, SecurePrivacy, Seeka shapes)', { body: json(pushSchema), ok: ok(S.PushAnswer, 'Each item with valid, applied and duplicate') }),
  op('post', '/api/v1/consent/events', 'consent:write', 'Record Bloomreach consent events: one, an array, or {events: [...]}', { body: json(S.ConsentEventsBody), ok: ok(S.EventsAnswer, 'Per event: stored, valid, applied; an invalid event is stored and revokes its category') }),
  op('post', '/api/v1/consent/import', 'consent:write', 'Import a CSV file of consent events, streamed', {
    body: { text: 'text/csv', description: 'Header `action,category,valid_until,timestamp,customer_id`, then one event per row (seed bloomreach-tracking-consent.txt). Also accepted as text/plain or application/octet-stream.' },
    ok: [ok(S.ImportReport, 'The import report'), { status: 413, description: 'The file exceeds api.maxCsvBytes: the rows before the limit were imported; `error.details` is their report' }, { status: 408, description: 'TW_ERR_IMPORT_INCOMPLETE: the import stopped itself before server.requestTimeoutMs; the rows before `error.details.resumeFromRow` were imported, `error.details` is their report; send the rest (or the whole file: stored rows are duplicates) again' }],
  }),
  op('post', '/api/v1/consent/events/expire', 'consent:write', 'Expire invalid consent events (by audit seq, or all of a subject\'s category or reference), restoring the previous state', {
    body: json(expireSchema),
    ok: ok(S.ExpireAnswer, 'Per event: expired now, or before'),
    errors: [404],
  }),
  // Reads (src/api/consent/read-routes.ts)
  op('get', '/api/v1/public/sites/:siteId/consent/verify', 'consent:read', "A visitor's consent per category (CookieBoss-compatible)", { query: verifyQuery, ok: ok(S.VerifyAnswer, 'The consent, or the "no consent found" shape'), errors: [404] }),
  op('get', '/api/v1/subjects/:type/:id', 'consent:read', "A subject's full record, merged over its linked subjects", { params: subjectParams, ok: ok(S.SubjectConsent) }),
  op('get', '/api/v1/subjects/:type/:id/check', 'consent:read', 'One category (?category=) or object reference (?reference=) of a subject', { params: subjectParams, query: checkQuery, ok: ok(S.CheckAnswer) }),
  // Audit (src/api/consent/audit-routes.ts)
  op('get', '/api/v1/audit', 'audit:read', 'The audit trail, filtered, a page at a time', { query: auditQuerySchema, ok: ok(S.AuditPage) }),
  op('get', '/api/v1/audit/export', 'audit:read', 'The audit trail, streamed as NDJSON (default) or CSV', {
    query: auditQuerySchema,
    ok: { status: 200, description: 'One entry per line (`format=ndjson`, each an AuditEntry) or CSV rows (`format=csv`)', other: { 'application/x-ndjson': 'AuditEntry objects, one per line', 'text/csv': 'A header row, then one row per entry' } },
  }),
  op('get', '/api/v1/audit/verify', 'audit:read', "Checks the audit log's hash chain, and that the stored state is the state the log implies", { ok: ok(S.ChainVerdict) }),
  // Decision receipts (src/api/consent/receipt-routes.ts, docs/receipts.md)
  op('get', '/api/v1/receipts', 'audit:read', "A subject's decision receipts, oldest first, a page at a time (NDJSON with `Accept: application/x-ndjson`)", {
    query: receiptQuerySchema,
    ok: { status: 200, description: 'A page of receipts', json: S.ReceiptPage, other: { 'application/x-ndjson': 'Receipt objects, one per line' } },
  }),
  op('get', '/api/v1/receipts/export', 'audit:read', "A subject's decision receipts, streamed as NDJSON", {
    query: receiptQuerySchema,
    ok: { status: 200, description: 'One receipt per line', other: { 'application/x-ndjson': 'Receipt objects, one per line' } },
  }),
  // Webhook subscriptions (src/api/consent/webhook-routes.ts)
  op('post', '/api/v1/webhooks', 'admin', 'Subscribe a URL to consent.changed and consent.expired', { body: json(subscriptionSchema), ok: ok(S.SubscriptionCreated, 'Created; the signing secret is shown this once', 201) }),
  op('get', '/api/v1/webhooks', 'admin', "The site's subscriptions (never their secrets)", { ok: ok(S.SubscriptionList) }),
  op('delete', '/api/v1/webhooks/:id', 'admin', 'Unsubscribe (the subscription is disabled; its pending deliveries are cancelled)', { ok: { status: 204, description: 'Disabled' }, errors: [404] }),
  // Dead letters (src/api/dead-letters/routes.ts)
  op('get', '/api/v1/deliveries/dead', 'admin', 'Dead letters: deliveries given up, without the event data', { query: deadListSchema, ok: ok(S.DeadLetterList) }),
  op('post', '/api/v1/deliveries/dead/replay', 'admin', 'Replay dead letters by filter, one {hitId, destinationId}, or {"all": true} (consent re-checked)', { body: json(deadBodySchema), ok: ok(S.Replayed), errors: [404] }),
  op('delete', '/api/v1/deliveries/dead', 'admin', 'Purge dead letters by filter, one {hitId, destinationId}, or {"all": true}', { body: json(deadBodySchema), ok: ok(S.Purged), errors: [404] }),
  // Preview (src/preview/routes.ts, docs/preview.md): mounted with debug.adminKey set
  op('post', '/api/v1/preview', 'admin', "Start a preview: a browser's own hits shown live and sent with the vendors' test modes (test) or to no vendor (silent)", { body: json(previewStartSchema), ok: ok(S.PreviewStarted, 'Started', 201) }),
  op('delete', '/api/v1/preview/:id', 'admin', 'Stop a preview: its token is refused from now on, its streams end', { ok: { status: 204, description: 'Stopped' }, errors: [404] }),
  op('get', '/api/v1/preview/:id/stream', 'admin', "The preview's decisions, live (server-sent events: decision, delivery, end)", {
    ok: { status: 200, description: 'The stream', other: { 'text/event-stream': 'event: decision | delivery | end, data: JSON (docs/preview.md); a heartbeat comment every 15 s' } },
    errors: [404],
  }),
  // This document (src/api/openapi/route.ts)
  op('get', '/api/v1/openapi.json', null, 'This OpenAPI document', { ok: { status: 200, description: 'The OpenAPI 3.1 document of /api/v1', other: { 'application/json': 'OpenAPI 3.1' } } }),
];
