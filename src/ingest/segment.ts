import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Event, EventContext, EventType } from './event.ts';
import { fastValid } from './segment-fast.ts';
import { LIMITS } from './segment-limits.ts';

/**
 * The Segment client: turns a Segment HTTP API payload (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/)
 * into canonical Events. Validation says which field is wrong; strings and nesting are bounded so a
 * crafted body cannot make the rest of the pipeline work hard.
 */

/** Deepest nesting accepted in one event (objects and arrays). */
export const MAX_DEPTH = 32;

const id = z.union([z.string().min(1).max(LIMITS.id), z.number().finite().transform(String)]);
const isoDate = z
  .string()
  .max(LIMITS.date)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO 8601 date');
const obj = z.record(z.string(), z.unknown());

/*
 * `null` is "absent" exactly where the official libraries send it (test/fixtures/segment/README.md
 * names the source of each): anonymous analytics.js (classic and analytics-next) sets
 * `userId: user.id()`, which is null; analytics-next with `user.disable` sets `anonymousId: null`;
 * classic `track(event, callback)` sends `properties: null` and classic `page(properties)` sends
 * `name: null, category: null`; analytics-next copies page properties (null included) into
 * `context.page`. `traits: null` is read like `properties: null` (the same free-form object; no
 * library was found sending it, but it means nothing else). Nowhere else: a null `context`,
 * `integrations`, `timestamp`, `groupId`, … is refused like any other wrong type. toEvent() removes
 * these nulls: the canonical event never carries them.
 */
const nullableId = id.nullable();
const nullableObj = obj.nullable();
const pageText = (max: number) => z.string().max(max).nullable().optional();

const contextSchema = z
  .object({
    ip: z.string().max(LIMITS.ip).optional(),
    userAgent: z.string().max(LIMITS.userAgent).optional(),
    locale: z.string().max(LIMITS.locale).optional(),
    page: z
      .object({
        url: pageText(LIMITS.pageText),
        path: pageText(LIMITS.pageText),
        referrer: pageText(LIMITS.pageText),
        title: pageText(LIMITS.pageTitle),
        search: pageText(LIMITS.pageText),
      })
      .loose()
      .optional(),
    traits: obj.optional(),
    consent: z.object({ categoryPreferences: z.unknown().optional() }).loose().optional(),
  })
  .loose();

const common = {
  type: z.string().optional(),
  messageId: z.string().min(1).max(LIMITS.id).optional(),
  timestamp: isoDate.optional(),
  originalTimestamp: isoDate.optional(),
  sentAt: isoDate.optional(),
  anonymousId: nullableId.optional(),
  userId: nullableId.optional(),
  context: contextSchema.optional(),
  integrations: obj.optional(),
  properties: nullableObj.optional(),
  traits: nullableObj.optional(),
  // Common Segment top-level fields we accept and do not use.
  channel: z.string().max(LIMITS.channel).optional(),
  version: z.unknown().optional(),
  writeKey: z.string().max(LIMITS.writeKey).optional(),
};

/** The one Segment validator, by event type (segment-fast.ts is its quick pre-check for the valid case). */
export const SEGMENT_SCHEMAS = {
  track: z.object({ ...common, event: z.string().min(1).max(LIMITS.name) }),
  page: z.object({ ...common, name: z.string().max(LIMITS.name).nullable().optional(), category: z.string().max(LIMITS.name).nullable().optional() }),
  screen: z.object({ ...common, name: z.string().max(LIMITS.name).optional() }),
  identify: z.object(common),
  group: z.object({ ...common, groupId: id }),
  alias: z.object({ ...common, previousId: id, userId: id }),
} as const;

type Parsed = z.output<(typeof SEGMENT_SCHEMAS)[EventType]> & Record<string, unknown>;

export interface FieldIssue {
  path: string;
  message: string;
}

export type ParseResult = { ok: true; event: Event } | { ok: false; issues: FieldIssue[] };

export interface RequestFacts {
  /** The client address as seen by the server (after trusted proxies). */
  ip?: string | undefined;
  userAgent?: string | undefined;
  /** Reception time. */
  now: Date;
}

/** What a batch's top level gives each of its events, under the event's own fields. */
export interface BatchDefaults {
  context?: Record<string, unknown> | undefined;
  integrations?: Record<string, unknown> | undefined;
  /**
   * When the batch was sent: analytics-next's batching dispatcher, analytics-node and the mobile
   * libraries put `sentAt` on the batch only (test/fixtures/segment/README.md), so that is the one
   * the clock correction of each event uses.
   */
  sentAt?: string | undefined;
}

export function isEventType(t: unknown): t is EventType {
  return typeof t === 'string' && Object.hasOwn(SEGMENT_SCHEMAS, t);
}

/**
 * Validates one Segment event. `type` comes from the route (`/v1/track`) or, for batches, from the
 * event itself. Extra fields `defaults` (a batch's top-level `context`, `integrations` and
 * `sentAt`) are merged under the event's own.
 */
export function parseSegmentEvent(
  input: unknown,
  routeType: EventType | undefined,
  facts: RequestFacts,
  defaults?: BatchDefaults,
): ParseResult {
  return parseWith(input, routeType, facts, defaults, true);
}

/** parseSegmentEvent with the quick check (segment-fast.ts) optional: the tests compare both ways on the same inputs. */
export function parseWith(
  input: unknown,
  routeType: EventType | undefined,
  facts: RequestFacts,
  defaults: BatchDefaults | undefined,
  fast: boolean,
): ParseResult {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, issues: [{ path: '', message: 'an event must be a JSON object' }] };
  }
  const raw = withDefaults(input as Record<string, unknown>, defaults);
  const type = routeType ?? raw.type;
  if (!isEventType(type)) {
    return { ok: false, issues: [{ path: 'type', message: `must be one of ${Object.keys(SEGMENT_SCHEMAS).join(', ')}` }] };
  }
  if (routeType !== undefined && raw.type !== undefined && raw.type !== routeType) {
    // The sent value is not echoed: refusals are logged, and a log carries no values.
    return { ok: false, issues: [{ path: 'type', message: `is not "${routeType}" but was sent to the ${routeType} route` }] };
  }
  const deep = depthIssue(raw);
  if (deep !== undefined) return { ok: false, issues: [deep] };

  // The common valid event skips zod (segment-fast.ts); zod decides, and explains, the rest.
  if (fast && fastValid(raw, type)) return finish(type, raw, facts);
  const result = SEGMENT_SCHEMAS[type].safeParse(raw);
  if (!result.success) {
    return {
      ok: false,
      issues: result.error.issues.map((i) => ({
        path: i.path.map(String).join('.'),
        message: valueAt(raw, i.path) === undefined ? 'required' : i.message,
      })),
    };
  }
  return finish(type, result.data, facts);
}

function finish(type: EventType, p: Parsed, facts: RequestFacts): ParseResult {
  if (p.userId == null && p.anonymousId == null) {
    return { ok: false, issues: [{ path: 'userId', message: 'userId or anonymousId is required' }] };
  }
  return { ok: true, event: toEvent(type, p, facts) };
}

/** A batch's top-level context, integrations and sentAt sit under each event's own, and are validated with it. */
function withDefaults(
  raw: Record<string, unknown>,
  defaults: BatchDefaults | undefined,
): Record<string, unknown> {
  if (defaults === undefined) return raw;
  const out = { ...raw };
  if (defaults.sentAt !== undefined && raw.sentAt === undefined) out.sentAt = defaults.sentAt;
  for (const key of ['context', 'integrations'] as const) {
    const base = defaults[key];
    if (base === undefined) continue;
    const own = raw[key];
    if (own === undefined) out[key] = base;
    else if (own !== null && typeof own === 'object' && !Array.isArray(own)) out[key] = { ...base, ...own };
  }
  return out;
}

function toEvent(type: EventType, p: Parsed, facts: RequestFacts): Event {
  const receivedAt = facts.now.toISOString();
  const { page, ...rest } = p.context ?? {};
  const context: EventContext = rest;
  if (page !== undefined) context.page = withoutNulls(page);
  if (context.ip === undefined && facts.ip !== undefined) context.ip = facts.ip;
  if (context.userAgent === undefined && facts.userAgent !== undefined) context.userAgent = facts.userAgent.slice(0, LIMITS.userAgent);

  const event: Event = {
    messageId: p.messageId ?? randomUUID(),
    type,
    timestamp: eventTime(p, facts.now),
    receivedAt,
    context,
    properties: p.properties ?? {},
    traits: p.traits ?? {},
    integrations: p.integrations ?? {},
  };
  if (p.sentAt !== undefined) event.sentAt = p.sentAt;
  if (p.anonymousId != null) event.anonymousId = p.anonymousId;
  if (p.userId != null) event.userId = p.userId;
  // Only the fields of this type's schema: an input the quick check passed still has the others.
  if (type === 'track' && typeof p.event === 'string') event.event = p.event;
  if ((type === 'page' || type === 'screen') && typeof p.name === 'string') event.name = p.name;
  // A page's category is "added to the properties object" (https://segment.com/docs/connections/spec/page/,
  // as analytics.js does); a `properties.category` the sender set itself is kept.
  if (type === 'page' && typeof p.category === 'string' && event.properties.category === undefined) {
    event.properties = { ...event.properties, category: p.category };
  }
  if (type === 'group' && typeof p.groupId === 'string') event.groupId = p.groupId;
  if (type === 'alias' && typeof p.previousId === 'string') event.previousId = p.previousId;
  return event;
}

/**
 * Segment corrects the device clock: timestamp = receivedAt - (sentAt - timestamp), when both are
 * given (https://segment.com/docs/connections/spec/common/#timestamp-overview). Without a
 * timestamp the reception time is used.
 */
function eventTime(p: Parsed, now: Date): string {
  const ts = p.timestamp ?? p.originalTimestamp;
  if (ts === undefined) return now.toISOString();
  let t = Date.parse(ts);
  if (p.sentAt !== undefined) t -= Date.parse(p.sentAt) - now.getTime();
  const d = new Date(t);
  // Extreme dates (year 275760) survive Date.parse but not the arithmetic; fall back to now.
  return Number.isNaN(d.getTime()) ? now.toISOString() : d.toISOString();
}

/** The page context without its null members (analytics-next copies page properties into it, null included). */
function withoutNulls(page: Record<string, unknown>): NonNullable<EventContext['page']> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(page)) {
    if (page[key] !== null) continue;
    out ??= { ...page };
    delete out[key];
  }
  // Every member left is what the schema (or its quick check) checked: a string or an extra field.
  return out ?? page;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * Depth check without allocating: the recursion stops at MAX_DEPTH + 1 levels whatever the input,
 * so it cannot itself exhaust the stack.
 */
function depthIssue(root: unknown): FieldIssue | undefined {
  return tooDeep(root, 1) ? { path: '', message: `nested deeper than ${MAX_DEPTH} levels` } : undefined;
}

function tooDeep(v: unknown, depth: number): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (depth > MAX_DEPTH) return true;
  if (Array.isArray(v)) {
    for (const child of v) if (tooDeep(child, depth + 1)) return true;
    return false;
  }
  for (const key in v) {
    if (Object.hasOwn(v, key) && tooDeep((v as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}
