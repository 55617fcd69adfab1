/**
 * The OpenAPI 3.1 document of /api/v1, built from the route list (./routes.ts) and the zod schemas
 * the routes parse with (zod 4's `z.toJSONSchema`). OpenAPI 3.1's schema dialect is JSON Schema
 * draft 2020-12, so the schemas are generated for that target and used as they are: requests as
 * their input side (what a client sends, before transforms), answers as their output side. Every
 * named schema lands in `components.schemas` and is referenced from the operations.
 *
 * Refinements in code (`superRefine`, custom checks) have no JSON Schema form: they are enforced by
 * the routes and show in the 400 answer's `details.issues`, not here.
 */
import { z } from 'zod';
import {
  ForbiddenError,
  InternalError,
  MalformedBodyError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
  type TagwardenError,
} from '../../errors.ts';
import { consentEventSchema, pushSchema } from '../consent/inputs.ts';
import { subscriptionSchema } from '../consent/webhook-routes.ts';
import { deadBodySchema } from '../dead-letters/filter.ts';
import { API_ROUTES, type AnswerSpec, type ApiRoute } from './routes.ts';
import * as S from './schemas.ts';

type Json = Record<string, unknown>;

export const OPENAPI_VERSION = '3.1.0';

/** The answers' shared shapes, each a component under its name. */
const NAMED_OUTPUTS: Record<string, z.ZodType> = {
  SubjectRef: S.SubjectRef,
  ItemState: S.ItemState,
  SubjectConsent: S.SubjectConsent,
  PushAnswer: S.PushAnswer,
  EventsAnswer: S.EventsAnswer,
  ImportReport: S.ImportReport,
  VerifyAnswer: S.VerifyAnswer,
  CheckAnswer: S.CheckAnswer,
  AuditEntry: S.AuditEntry,
  AuditPage: S.AuditPage,
  ChainVerdict: S.ChainVerdict,
  Subscription: S.Subscription,
  SubscriptionCreated: S.SubscriptionCreated,
  SubscriptionList: S.SubscriptionList,
  DeadLetter: S.DeadLetter,
  DeadLetterList: S.DeadLetterList,
  Replayed: S.Replayed,
  Purged: S.Purged,
  WebhookPayload: S.WebhookPayload,
};

/** Request shapes under readable names (a body not named here is named after its operation). */
const NAMED_INPUTS: Record<string, z.ZodType> = {
  ConsentEvent: S.ConsentEvent,
  ConsentEvents: S.ConsentEventsBody,
  Push: pushSchema,
  NewSubscription: subscriptionSchema,
  DeadLetterSelection: deadBodySchema,
};

/**
 * The errors an /api/v1 route can answer, by status: their codes are read from the classes of
 * src/errors.ts, so the document lists exactly what `{error: {code}}` may hold.
 */
const ERRORS: Record<number, { description: string; classes: (new (message: string) => TagwardenError)[] }> = {
  400: { description: 'Invalid input: `error.details.issues` names each failing field (path, message)', classes: [ValidationError, MalformedBodyError] },
  401: { description: 'No API key, or an unknown or revoked one', classes: [UnauthorizedError] },
  403: { description: 'The API key lacks the scope', classes: [ForbiddenError] },
  404: { description: 'Not found', classes: [NotFoundError] },
  413: { description: 'The body exceeds the limit (api.maxBodyBytes, api.maxCsvBytes)', classes: [PayloadTooLargeError] },
  415: { description: 'Unsupported content type', classes: [UnsupportedMediaTypeError] },
  429: { description: 'Rate limited: retry after `Retry-After` seconds', classes: [RateLimitedError] },
  500: { description: 'Unexpected failure (the message says nothing more)', classes: [InternalError] },
  503: { description: 'Shutting down or unavailable: retry (on another instance)', classes: [UnavailableError] },
};

const codesOf = (status: number): string[] => (ERRORS[status]?.classes ?? []).map((C) => new C('').code);

/** Every error code the document lists (for tests and docs). */
export function documentedErrorCodes(): string[] {
  return [...new Set(Object.keys(ERRORS).flatMap((s) => codesOf(Number(s))))].sort();
}

/** Express `:param` → OpenAPI `{param}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function pathParams(expressPath: string): string[] {
  return [...expressPath.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
}

/** `post /api/v1/subjects/:type/:id/check` → `postSubjectsTypeIdCheck`. */
function operationId(r: ApiRoute): string {
  const words = r.path
    .replace(/^\/api\/v1\//, '')
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== '');
  return r.method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

function tagOf(r: ApiRoute): string {
  const first = r.path.replace(/^\/api\/v1\//, '').split('/')[0] ?? '';
  const tags: Record<string, string> = { consent: 'consent', public: 'consent', subjects: 'consent', audit: 'audit', webhooks: 'webhooks', deliveries: 'dead letters', 'openapi.json': 'meta' };
  return tags[first] ?? first;
}

/**
 * What JSON Schema cannot learn from a zod schema: a time accepted as `z.unknown()` and read by a
 * transform (consentEventSchema's timestamp and valid_until) would show as `{}`; these say what it
 * takes. Keyed by the schema instance, so only those fields are touched.
 */
const TIME_TEXT = 'unix seconds, milliseconds, or ISO 8601 with a zone';
const SUPPLEMENTS = new Map<unknown, (json: Json) => void>([
  [consentEventSchema.shape.timestamp, (j) => Object.assign(j, { anyOf: [{ type: 'number' }, { type: 'string', maxLength: 64 }], description: TIME_TEXT })],
  [consentEventSchema.shape.valid_until, (j) => Object.assign(j, { anyOf: [{ const: 'unlimited' }, { type: 'number' }, { type: 'string', maxLength: 64 }], description: `\`unlimited\` or ${TIME_TEXT}; required when action is accept` })],
  [
    S.NestedEventAttributes,
    (j) => {
      if (Array.isArray(j.required)) j.required = (j.required as string[]).filter((k) => k !== 'timestamp');
    },
  ],
]);

const GENERATE = {
  target: 'draft-2020-12',
  unrepresentable: 'any',
  uri: (id: string) => `#/components/schemas/${id}`,
  override: (ctx: { zodSchema: unknown; jsonSchema: Json }) => SUPPLEMENTS.get(ctx.zodSchema)?.(ctx.jsonSchema),
} as const;

function clean(schema: Json): Json {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** A schema object for one standalone part (a query or path parameter), inline. */
function inline(schema: z.ZodType): Json {
  return clean(z.toJSONSchema(schema, { ...GENERATE, io: 'input' }));
}

function parameters(r: ApiRoute): Json[] {
  const out: Json[] = [];
  const params = r.params === undefined ? undefined : inline(r.params);
  const props = (params?.properties ?? {}) as Record<string, Json>;
  for (const name of pathParams(r.path)) out.push({ name, in: 'path', required: true, schema: props[name] ?? { type: 'string' } });
  if (r.query !== undefined) {
    const q = inline(r.query);
    const required = new Set((q.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries((q.properties ?? {}) as Record<string, Json>)) {
      const { description, ...rest } = schema;
      out.push({ name, in: 'query', required: required.has(name), schema: rest, ...(typeof description === 'string' ? { description } : {}) });
    }
  }
  return out;
}

/** Which error statuses an operation can answer: derived from what it takes, plus its own. */
function errorStatuses(r: ApiRoute): number[] {
  const s = new Set<number>(r.errors ?? []);
  if (r.scope !== null) [401, 403, 429].forEach((n) => s.add(n));
  if (r.query !== undefined || r.body !== undefined || r.params !== undefined) s.add(400);
  if (r.params !== undefined) s.add(404);
  if (r.body !== undefined) [413, 415].forEach((n) => s.add(n));
  [500, 503].forEach((n) => s.add(n));
  return [...s].sort((a, b) => a - b);
}

export interface OpenApiOptions {
  /** The routes to describe (default: API_ROUTES). */
  routes?: readonly ApiRoute[];
  /** `servers[0].url`; default `/` (the document's own origin). */
  serverUrl?: string;
}

/** Builds the document. Pure: the same routes give the same document (so it can be cached and ETagged). */
export function buildOpenApiDocument(opts: OpenApiOptions = {}): Json {
  const routes = opts.routes ?? API_ROUTES;
  // One registry per side: a zod schema is described as it is sent (input) or answered (output).
  const inputs = z.registry<{ id: string }>();
  const outputs = z.registry<{ id: string }>();
  const named = (reg: typeof inputs, map: Record<string, z.ZodType>): void => {
    for (const [id, schema] of Object.entries(map)) reg.add(schema, { id });
  };
  named(inputs, NAMED_INPUTS);
  named(outputs, NAMED_OUTPUTS);
  const idOf = (reg: typeof inputs, schema: z.ZodType, fallback: string): string => {
    const known = reg.get(schema)?.id;
    if (known !== undefined) return known;
    reg.add(schema, { id: fallback });
    return fallback;
  };
  const ref = (id: string): Json => ({ $ref: `#/components/schemas/${id}` });

  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const id = operationId(r);
    const answers: Json = {};
    const oks: AnswerSpec[] = r.ok === undefined ? [{ status: 200, description: 'OK' }] : Array.isArray(r.ok) ? r.ok : [r.ok];
    for (const a of oks) {
      const content: Json = {};
      if (a.json !== undefined) content['application/json'] = { schema: ref(idOf(outputs, a.json, `${id}Answer${a.status}`)) };
      for (const [type, description] of Object.entries(a.other ?? {})) content[type] = { schema: { type: 'string', description } };
      answers[String(a.status)] = { description: a.description, ...(Object.keys(content).length > 0 ? { content } : {}) };
    }
    for (const status of errorStatuses(r)) if (answers[String(status)] === undefined) answers[String(status)] = { $ref: `#/components/responses/Error${status}` };
    const body = r.body === undefined ? undefined : 'json' in r.body ? { required: true, content: { 'application/json': { schema: ref(idOf(inputs, r.body.json, `${id}Body`)) } } } : { required: true, description: r.body.description, content: { [r.body.text]: { schema: { type: 'string' } } } };
    const operation: Json = {
      operationId: id,
      summary: r.summary,
      ...(r.description === undefined ? {} : { description: r.description }),
      tags: [tagOf(r)],
      security: r.scope === null ? [] : [{ apiKey: [r.scope] }, { bearer: [r.scope] }],
      ...(r.scope === null ? {} : { 'x-scope': r.scope }),
      parameters: parameters(r),
      ...(body === undefined ? {} : { requestBody: body }),
      responses: answers,
    };
    const path = openApiPath(r.path);
    paths[path] ??= {};
    paths[path][r.method] = operation;
  }

  const schemas: Record<string, Json> = {};
  for (const [side, reg] of [
    ['input', inputs],
    ['output', outputs],
  ] as const) {
    const generated = z.toJSONSchema(reg, { ...GENERATE, io: side }) as { schemas: Record<string, Json> };
    for (const [name, schema] of Object.entries(generated.schemas)) {
      if (schemas[name] !== undefined) throw new InternalError(`openapi: two schemas named ${name}`);
      schemas[name] = clean(schema);
    }
  }
  schemas.Error = {
    type: 'object',
    description: 'Every error answer',
    properties: {
      error: {
        type: 'object',
        properties: {
          code: { type: 'string', enum: documentedErrorCodes(), description: 'Stable TW_ERR_* code (docs/errors.md)' },
          message: { type: 'string' },
          details: { description: 'Structured details, e.g. `issues: [{path, message}]` for a 400' },
          requestId: { type: 'string', description: 'The request id, as in the X-Request-Id answer header: quote it when reporting a problem (docs/logs.md)' },
        },
        required: ['code', 'message'],
      },
    },
    required: ['error'],
  };
  const responses: Record<string, Json> = {};
  for (const [status, e] of Object.entries(ERRORS)) {
    responses[`Error${status}`] = {
      description: e.description,
      content: { 'application/json': { schema: { allOf: [ref('Error'), { properties: { error: { properties: { code: { enum: codesOf(Number(status)) } } } } }] } } },
      ...(status === '429' || status === '503' ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } } } : {}),
    };
  }

  return {
    openapi: OPENAPI_VERSION,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Tagwarden consent API',
      version: '1',
      description: 'The consent system of record: pushes, consent events, CSV imports, verify, subject records, the audit trail, webhooks and dead letters. See docs/consent-api.md.',
    },
    servers: [{ url: opts.serverUrl ?? '/' }],
    tags: ['consent', 'audit', 'webhooks', 'dead letters', 'meta'].map((name) => ({ name })),
    paths,
    webhooks: Object.fromEntries(
      (['consent.changed', 'consent.expired'] as const).map((type) => [
        type,
        {
          post: {
            summary: type === 'consent.changed' ? "A subject's consent changed" : "A granted item's valid_until passed",
            description: 'Signed Standard Webhooks style: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.',
            requestBody: { required: true, content: { 'application/json': { schema: ref('WebhookPayload') } } },
            responses: { '2XX': { description: 'Delivered' }, '410': { description: 'Gone: the subscription is disabled' } },
          },
        },
      ]),
    ),
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (`npx tagwarden keys create`); its scopes decide the routes it may call' },
        bearer: { type: 'http', scheme: 'bearer', description: 'The same API key as `Authorization: Bearer <key>`' },
      },
      schemas,
      responses,
    },
  };
}
