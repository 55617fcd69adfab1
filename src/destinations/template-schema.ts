/**
 * The zod schema of `templates/<id>/template.json`. The schema checks the file's structure; the
 * mapping values (`request.url`, `mappings[].event`, …) are JSON here and are checked by compiling
 * them (mapping/compile.ts) in load.ts, which knows the declared settings.
 */
import { z } from 'zod';
import { RETRY_SAFE_FAILURES, type RetrySafeFailure } from './types.ts';
import { EVENT_TYPES, type EventType } from '../ingest/event.ts';
import { parseDottedPath } from '../lib/dotted.ts';
import { TRANSFORMS, type TransformFn } from './mapping/transforms.ts';
import { AuthSchema, authIssues } from './auth/schema.ts';

const dottedPath = z
  .string()
  .superRefine((value, ctx) => {
    const parsed = parseDottedPath(value);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
  })
  .describe('A dotted path to a field of the rendered item, e.g. "user_data.em"');

const regexSource = z
  .string()
  .superRefine((value, ctx) => {
    try {
      new RegExp(value, 'u');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(err as Error).message}` });
    }
  })
  .describe('A JavaScript regular expression source (unicode mode), e.g. "^\\\\d+$"');

const mappingValue = z.json().describe('A mapping: JSON literals map to themselves, {"@directive": …} objects are evaluated (docs/templates.md)');

const eventType = z
  .enum(EVENT_TYPES as unknown as [EventType, ...EventType[]])
  .describe('A canonical event type');

export const SettingSchema = z
  .object({
    type: z.enum(['string', 'number', 'boolean']).describe('Type of the value the site config must give'),
    required: z.boolean().optional().describe('The destination cannot be bound without it'),
    secret: z.boolean().optional().describe('A credential: masked in logs and explain output'),
    default: z.union([z.string(), z.number(), z.boolean()]).optional().describe('Value used when the site config gives none'),
    pattern: regexSource.optional().describe('For string settings: a regular expression the whole value must match'),
    description: z.string().min(1).describe('What the setting is and where to find it'),
  })
  .strict()
  .superRefine((setting, ctx) => {
    if (setting.default !== undefined && typeof setting.default !== setting.type) {
      ctx.addIssue({ code: 'custom', path: ['default'], message: `default must be a ${setting.type}` });
    }
    if (setting.pattern !== undefined && setting.type !== 'string') {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'pattern applies to string settings only' });
    }
    if (setting.required === true && setting.default !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['default'], message: 'a required setting cannot have a default' });
    }
  })
  .describe('One setting a destination instance supplies in the site config');

export const ConsentDefaultsSchema = z
  .object({
    categories: z.array(z.string().min(1)).describe('Site consent categories the destination needs; [] = not gated by category'),
    combine: z.enum(['all', 'any']).describe('"all": every category must be granted; "any": one is enough'),
    whenUnknown: z.enum(['drop', 'hold', 'redact']).describe('What to do in opt-in mode when consent is unknown'),
  })
  .strict()
  .describe('Default consent requirements; the site config may override them per destination');

export const RequestSchema = z
  .object({
    method: z.enum(['GET', 'POST', 'PUT']).describe('HTTP method; GET requests carry no body'),
    url: mappingValue.describe('Mapping for the absolute request URL, usually {"@template": "https://…/{{settings.x}}"}'),
    query: z
      .record(z.string().min(1), mappingValue)
      .optional()
      .describe('Query parameters appended to the URL (URLSearchParams encoding); absent values are left out'),
    headers: z
      .record(z.string(), mappingValue)
      .optional()
      .superRefine((headers, ctx) => {
        for (const name of Object.keys(headers ?? {})) {
          if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
            ctx.addIssue({ code: 'custom', path: [name], message: `header name "${name}" must be a lowercase HTTP token` });
          }
        }
      })
      .describe('Request headers (lowercase names); absent values are left out'),
    format: z
      .enum(['json', 'urlencoded-lines'])
      .default('json')
      .describe(
        '`json`: the body is JSON. `urlencoded-lines` (POST only): the envelope\'s scalar fields become URL query parameters and each item is one URL-encoded line of a text/plain body, nested objects flattened with dots (the batch format of gtag.js\'s /g/collect)',
      ),
    idempotencyKey: dottedPath
      .optional()
      .describe('Field of the rendered item that identifies the event to the vendor (e.g. "event_id"); enables POST retries'),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .max(256)
      .optional()
      .describe(
        'Requests of one destination of this template in flight at once, unless the destination sets destinations[].maxInFlight (omitted: 16). For a vendor that takes one client per request (GA4), concurrency is where its throughput comes from: at most maxInFlight / the vendor\'s answer time requests per second',
      ),
    retrySafe: z
      .array(z.enum(RETRY_SAFE_FAILURES as unknown as [RetrySafeFailure, ...RetrySafeFailure[]]))
      .max(RETRY_SAFE_FAILURES.length)
      .refine((list) => new Set(list).size === list.length, 'each failure at most once')
      .optional()
      .describe(
        'For a POST without idempotencyKey: the failures after which the vendor may have processed the request but a resend is still safe (status_5xx, status_transient, timeout, network). Refusals (429, 408, 503 with Retry-After) and requests that never left are retried without it; [] or omitted = nothing else',
      ),
  })
  .strict()
  .superRefine((request, ctx) => {
    if (request.retrySafe !== undefined && (request.idempotencyKey !== undefined || request.method !== 'POST')) {
      ctx.addIssue({ code: 'custom', path: ['retrySafe'], message: 'retrySafe is for a POST without idempotencyKey: a key or an idempotent method already makes every retry safe' });
    }
  })
  .describe('The vendor request; url/query/headers are evaluated with $ = the request body object');

export const BatchSchema = z
  .object({
    maxEvents: z.number().int().min(1).max(10_000).describe('Most events in one request'),
    maxBytes: z.number().int().min(1).describe('Most bytes in one request body'),
    lingerMs: z.number().int().min(0).max(60_000).describe('How long the first event of a batch may wait for company'),
    into: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe('Body field that holds the array of items (e.g. "data"); without it a request carries one event'),
  })
  .strict()
  .describe('Batching limits');

export const MatchSchema = z
  .object({
    type: z.union([eventType, z.array(eventType).min(1)]).optional().describe('Event type(s) this mapping handles'),
    event: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('Track event name(s) this mapping handles (exact match on the event\'s `event`)'),
  })
  .strict()
  .describe('Which events a mapping applies to; every given condition must hold');

export const SkipSchema = z
  .object({
    when: mappingValue.describe('A mapping evaluated against the event; present (not absent, null or "") → skip'),
    reason: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,63}$/, 'a reason is lowercase letters, digits and _ (it becomes a metrics label)')
      .describe('The skip reason reported for the event, e.g. ga4_automatic_event'),
  })
  .strict()
  .describe('Events this mapping matches but deliberately does not send');

export const MappingRuleSchema = z
  .object({
    match: MatchSchema.optional().describe('Which events this mapping handles; omitted = every event'),
    envelope: mappingValue
      .optional()
      .describe('Request-level fields (e.g. GA4 client_id); events with equal envelopes may share a request'),
    event: mappingValue.describe('The per-event item sent to the vendor; must render to an object'),
    required: z
      .array(dottedPath)
      .optional()
      .describe('Dotted paths that must be present after rendering and redaction ("envelope." prefix for the envelope); missing → render error'),
    patterns: z
      .record(dottedPath, regexSource)
      .optional()
      .describe('Dotted path → regular expression a present value must match (e.g. GA4 event names); mismatch → render error'),
    skip: SkipSchema.optional().describe('When `when` renders present, the event is not sent: a skip with `reason` instead of a request'),
  })
  .strict()
  .describe('One mapping; the first whose match fits an event renders it');

export const RetryRuleSchema = z
  .object({
    status: z.array(z.number().int().min(400).max(599)).min(1).max(20).describe('Response statuses the rule applies to'),
    json: z
      .record(dottedPath, z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).max(50))
      .refine((r) => Object.keys(r).length > 0, 'at least one field')
      .describe('Dotted path into the JSON response body → the values that make it temporary; every path must hold one of its values'),
  })
  .strict()
  .describe('A vendor error answer to retry: one of the statuses, and a JSON body matching every path');

export const BisectRuleSchema = z
  .object({
    status: z
      .array(z.number().int().min(400).max(499).refine((s) => s !== 408 && s !== 429, '408 and 429 are refusals, retried as they are'))
      .min(1)
      .max(20)
      .describe('Client-error statuses (4xx, not 408 or 429) the rule applies to'),
    json: RetryRuleSchema.shape.json.describe('Dotted path into the JSON response body → the values that mean "one event of the batch is invalid"; every path must hold one of its values'),
  })
  .strict()
  .describe('A vendor answer that rejects a whole batch for one invalid event: one of the statuses, and a JSON body matching every path');

const codeValue = z.union([z.string(), z.number(), z.boolean()]);

export const SuccessCodeSchema = z
  .object({
    json: dottedPath.describe('Dotted path into the JSON body of a 2xx answer: the field holding the vendor\'s result code (TikTok: `code`)'),
    ok: z.array(codeValue).min(1).max(50).describe('Values of that field that mean success (TikTok: 0)'),
    transient: z
      .array(z.union([codeValue, z.object({ min: z.number().describe('Lowest code of the range'), max: z.number().describe('Highest code of the range') }).strict()]))
      .max(50)
      .default([])
      .describe('Other values that are temporary (retried like a 429): a value, or a numeric range {min, max} inclusive; every other value is a final rejection'),
  })
  .strict()
  .describe('For vendors that answer 2xx to errors (TikTok\'s Business API): a 2xx whose JSON body has the field with a value not in `ok` is an error answer, not a delivery');

export const RedactionRuleSchema = z
  .object({
    remove: z.array(dottedPath).optional().describe('Dotted paths to delete ("envelope." prefix for the envelope)'),
    transform: z
      .record(dottedPath, z.enum(TRANSFORMS as unknown as [TransformFn, ...TransformFn[]]))
      .optional()
      .describe('Dotted path → @transform function applied to a present value (e.g. truncateIp); a value it cannot convert is removed'),
    set: z
      .record(dottedPath, z.json())
      .optional()
      .describe('Dotted path → JSON value to set, creating parent objects ("envelope." prefix for the envelope)'),
  })
  .strict()
  .describe('A named reshaping applied after rendering, when the policy asks for it: removals, then transforms, then sets');

/**
 * How a rendered event is sent in a preview's test mode (src/preview/, docs/preview.md): data, not
 * code. `code` names the field that takes the preview's test event code for this destination (Meta,
 * TikTok: the vendor shows such events in its test tool and does not use them for ads); `set` the
 * fields set to fixed values (GA4: `params.debug_mode`). A template without `testMode` is not sent
 * in preview.
 */
export const TestModeSchema = z
  .object({
    docs: z.url().describe('The vendor documentation of its test mode'),
    code: dottedPath.optional().describe('Dotted path that takes the preview\'s test event code ("envelope." prefix for the envelope); a preview without a code for the destination does not send to it'),
    set: z
      .record(dottedPath, z.json())
      .optional()
      .refine((set) => set === undefined || Object.keys(set).length <= 8, 'at most 8 fields')
      .describe('Dotted path → JSON value set in test mode, creating parent objects ("envelope." prefix for the envelope)'),
  })
  .strict()
  .refine((t) => t.code !== undefined || (t.set !== undefined && Object.keys(t.set).length > 0), 'code or set is required')
  .describe("The vendor's test mode, applied to a preview's events (mode test)");

/** A path of a vendor rule: a dotted path whose `*` segments stand for every key or element. */
const rulePath = z
  .string()
  .superRefine((value, ctx) => {
    const segments = value.split('.');
    if (segments.length > 16) ctx.addIssue({ code: 'custom', message: 'path deeper than 16 segments' });
    for (const segment of segments) {
      if (segment === '*') continue;
      const parsed = parseDottedPath(segment);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    }
  })
  .describe('A dotted path into the rendered item ("envelope." prefix for the envelope); a "*" segment is every key of an object or element of an array, e.g. "params.*"');

export const RowErrorsSchema = z
  .object({
    errors: rulePath.describe('Path into the JSON body of a 2xx answer to each per-row error object; `*` fans out over array elements or object values (Google Ads: `partialFailureError.details.*.errors.*`)'),
    index: rulePath.describe('Path in an error object to the failed row\'s 0-based index in the batch; numeric segments index arrays (Google Ads: `location.fieldPathElements.0.index`)'),
    code: rulePath.describe('Path in an error object to its code; `*` takes the first string (Google Ads: `errorCode.*`). A code that is not an upper-case identifier is reported as UNKNOWN'),
    transient: z.array(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/)).max(100).default([]).describe('Codes after which the row may be taken later: retried by the retry policy; every other code gives the row up at once'),
    retryAfterSeconds: z.number().int().positive().max(7 * 86_400).optional().describe('The wait the vendor asks for before a transient row is sent again, applied like a Retry-After (beyond the retry window the row becomes a dead letter to replay)'),
    maxResponseBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(4 * 1024 * 1024).describe('Most bytes of a 2xx body read to find the failed rows; a longer body counts as unreadable (the whole batch gives up)'),
  })
  .strict()
  .describe('For vendors that answer 2xx to a batch some rows of which failed (Google Ads partial failure): where the failed rows are listed. Failed rows give up (or retry) on their own; the rest are delivered');

const ruleScalar = z.union([z.string(), z.number(), z.boolean()]);

/** What every check carries: its id (the drop reason `vendor_rule:<id>`), what it enforces, and the vendor page that says so. */
const checkBase = {
  id: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'a rule id is lowercase letters, digits and _ (it becomes the drop reason vendor_rule:<id>)')
    .describe('Rule id; an event that breaks the rule is dropped with reason vendor_rule:<id>'),
  description: z.string().min(1).describe('The vendor limit the check enforces'),
  docs: z.url().describe('The vendor documentation that states the limit'),
  path: rulePath,
};

const nameRules = {
  pattern: regexSource.optional().describe('A regular expression each name must match'),
  maxLength: z.number().int().min(1).max(10_000).optional().describe('Most characters (code points) in a name'),
  reserved: z.array(z.string().min(1)).max(500).optional().describe('Names the vendor reserves'),
  reservedPrefixes: z.array(z.string().min(1)).max(50).optional().describe('Prefixes the vendor reserves'),
};

export const VendorCheckSchema = z
  .discriminatedUnion('kind', [
    z.object({ ...checkBase, kind: z.literal('name').describe('Each string at path is a name: pattern, length, reserved names and prefixes'), ...nameRules }).strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('keys').describe('Each object at path: how many keys, and each key as a name'),
        maxCount: z.number().int().min(0).max(10_000).optional().describe('Most keys in the object'),
        ...nameRules,
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('maxLength').describe('Each string at path has at most max characters'),
        max: z.number().int().min(1).max(1_000_000).describe('Most characters (code points)'),
        except: z.record(dottedPath, z.number().int().min(1).max(1_000_000)).optional().describe('Concrete paths with their own maximum, e.g. {"params.page_location": 1000}'),
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('timeWindow').describe("The timestamp at path, against the event's receivedAt: not older than maxAgeSeconds, not later than maxFutureSeconds"),
        unit: z.enum(['seconds', 'millis', 'micros']).describe('Unit of the epoch timestamp at path'),
        maxAgeSeconds: z.number().int().min(0).optional().describe('Most seconds the time may be before receivedAt'),
        maxFutureSeconds: z.number().int().min(0).optional().describe('Most seconds the time may be after receivedAt (0 = not in the future)'),
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('oneOf').describe('A present value at path is one of values'),
        values: z.array(ruleScalar).min(1).max(200).describe('The values the vendor accepts'),
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('requiredWhen').describe('path must be present when the field at when.path holds one of when.equals'),
        when: z
          .object({
            path: rulePath,
            equals: z.array(ruleScalar).min(1).max(50).describe('The values that make path required'),
          })
          .strict()
          .describe('The condition'),
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('maxItems').describe('Each array at path has at most max elements (e.g. Google Ads: at most 5 userIdentifiers)'),
        max: z.number().int().min(0).max(1_000_000).describe('Most elements'),
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('exactlyOne').describe('Exactly one of path and the others is present (e.g. Google Ads: one of gclid, gbraid, wbraid)'),
        others: z.array(rulePath).min(1).max(20).describe('The other paths of the group'),
      })
      .strict(),
    z
      .object({
        ...checkBase,
        kind: z.literal('absentWhen').describe('path must be absent when any field at when.path is present (e.g. Google Ads: no userIdentifiers with a gbraid or wbraid)'),
        when: z
          .object({ paths: z.array(rulePath).min(1).max(20).describe('The fields whose presence forbids path') })
          .strict()
          .describe('The condition'),
      })
      .strict(),
  ])
  .describe('One documented vendor limit, checked on the rendered event before it is batched');

export const VendorRulesSchema = z
  .object({
    maxEventsPerRequest: z.number().int().min(1).optional().describe('The most events the vendor takes in one request; batch.maxEvents may not exceed it'),
    maxRequestBytes: z.number().int().min(1).optional().describe('The most bytes the vendor takes in one request body; batch.maxBytes (which counts the items only) must be below it, leaving room for the envelope'),
    docs: z.url().optional().describe('The vendor documentation of the request limits'),
    checks: z
      .array(VendorCheckSchema)
      .max(100)
      .optional()
      .superRefine((checks, ctx) => {
        const seen = new Set<string>();
        (checks ?? []).forEach((c, i) => {
          if (seen.has(c.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate rule id "${c.id}"` });
          seen.add(c.id);
        });
      })
      .describe('Checks of each rendered event, in order; the first that fails drops the event with reason vendor_rule:<id>'),
  })
  .strict()
  .describe("The vendor's documented limits: request limits the batch must keep, and checks of each rendered event");

export const TemplateSchema = z
  .object({
    $schema: z.string().optional().describe('Optional JSON Schema reference for editors'),
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes')
      .describe('Template id; equals its directory name'),
    name: z.string().min(1).describe('Human name of the destination type'),
    version: z.number().int().min(1).describe('Template version; bump when the rendered output changes'),
    apiVersion: z.string().min(1).optional().describe('Vendor API version the template targets'),
    docsUrl: z.url().optional().describe('Vendor documentation of the API'),
    description: z.string().min(1).describe('What the destination does'),
    settings: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'setting names are identifiers'), SettingSchema)
      .default({})
      .describe('Settings a destination instance supplies, by name'),
    consent: ConsentDefaultsSchema.optional(),
    request: RequestSchema,
    batch: BatchSchema.optional().describe('Batching limits; omitted = one event per request'),
    mappings: z.array(MappingRuleSchema).min(1).describe('Mappings tried in order; no match → skip `no_mapping:<type>`'),
    retryOn: z
      .array(RetryRuleSchema)
      .max(16)
      .optional()
      .describe('Error answers that are temporary although their status says otherwise (e.g. Meta rate limits as 400): retried like a 429'),
    bisectOn: z
      .array(BisectRuleSchema)
      .min(1)
      .max(16)
      .optional()
      .describe('Error answers with which the vendor rejects a whole batch for one invalid event (Meta: 400, error.code 100): such a batch is split in halves and resent until the invalid events are alone, and only they give up'),
    successCode: SuccessCodeSchema.optional(),
    rowErrors: RowErrorsSchema.optional(),
    auth: AuthSchema.optional().describe('How delivery authorises the vendor request (OAuth 2.0 refresh-token grant); omitted = the request carries its own credentials'),
    redact: z
      .record(z.string().regex(/^[A-Za-z0-9_:.-]+$/, 'redaction names use letters, digits, _ : . -'), RedactionRuleSchema)
      .optional()
      .describe('Redaction rules by name (e.g. consent_unknown, ad_user_data:denied, limited_data_use)'),
    rules: VendorRulesSchema.optional(),
    testMode: TestModeSchema.optional(),
  })
  .strict()
  .superRefine((template, ctx) => {
    const lines = template.request.format === 'urlencoded-lines';
    if (lines && template.request.method !== 'POST') {
      ctx.addIssue({ code: 'custom', path: ['request', 'format'], message: 'urlencoded-lines needs method POST (the lines are the body)' });
    }
    if (lines && template.batch?.into !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['batch', 'into'], message: 'urlencoded-lines bodies are one item per line, not a field' });
    }
    if (!lines && template.batch !== undefined && template.batch.into === undefined && template.batch.maxEvents !== 1) {
      ctx.addIssue({ code: 'custom', path: ['batch', 'maxEvents'], message: 'batching several events needs batch.into (the body field of the array)' });
    }
    if (template.bisectOn !== undefined && (template.batch === undefined || template.batch.maxEvents === 1)) {
      ctx.addIssue({ code: 'custom', path: ['bisectOn'], message: 'bisectOn needs batches of several events (batch.maxEvents > 1): a single event cannot be split' });
    }
    const rules = template.rules;
    const maxEvents = template.batch?.maxEvents ?? 1;
    if (rules?.maxEventsPerRequest !== undefined && maxEvents > rules.maxEventsPerRequest) {
      ctx.addIssue({ code: 'custom', path: ['batch', 'maxEvents'], message: `batch.maxEvents ${maxEvents} exceeds the vendor's rules.maxEventsPerRequest ${rules.maxEventsPerRequest}` });
    }
    if (rules?.maxRequestBytes !== undefined && (template.batch === undefined || template.batch.maxBytes >= rules.maxRequestBytes)) {
      ctx.addIssue({ code: 'custom', path: ['batch', 'maxBytes'], message: `rules.maxRequestBytes ${rules.maxRequestBytes} needs batch.maxBytes below it (the batcher counts the items, the envelope comes on top)` });
    }
    if (template.request.method === 'GET' && template.batch?.into !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['batch', 'into'], message: 'GET requests have no body to batch into' });
    }
    if (template.auth !== undefined) {
      for (const issue of authIssues(template.auth, template.settings, Object.keys(template.request.headers ?? {}))) ctx.addIssue({ code: 'custom', ...issue });
    }
  })
  .describe('A destination template (templates/<id>/template.json)');

export type TemplateDefinition = z.output<typeof TemplateSchema>;
export type SettingDefinition = z.output<typeof SettingSchema>;
export type MappingRuleDefinition = z.output<typeof MappingRuleSchema>;
export type RedactionRuleDefinition = z.output<typeof RedactionRuleSchema>;
export type RetryRuleDefinition = z.output<typeof RetryRuleSchema>;
export type BisectRuleDefinition = z.output<typeof BisectRuleSchema>;
export type SuccessCodeDefinition = z.output<typeof SuccessCodeSchema>;
export type VendorRulesDefinition = z.output<typeof VendorRulesSchema>;
export type TestModeDefinition = z.output<typeof TestModeSchema>;
export type VendorCheckDefinition = z.output<typeof VendorCheckSchema>;
export type ConsentDefaults = z.output<typeof ConsentDefaultsSchema>;
