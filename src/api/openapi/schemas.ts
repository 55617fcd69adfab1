/**
 * Schemas of what the /api/v1 routes answer, for the OpenAPI document only (the routes build their
 * answers in code; these say what those answers hold). Requests are described by the very zod
 * schemas the routes parse with (src/api/openapi/routes.ts imports them); what a route accepts
 * beyond one schema (the Bloomreach envelope around consentEventSchema) is composed here from it.
 */
import { z } from 'zod';
import { consentEventSchema } from '../consent/inputs.ts';

const isoTime = z.string().meta({ format: 'date-time', description: 'ISO 8601, UTC' });
const subject = z.object({ type: z.enum(['visitor', 'user']), id: z.string() });

export const SubjectRef = subject.describe('A visitor id or a user id of the site.');

export const ItemState = z
  .object({
    item: z.string().describe('A category id, or `ref:<reference>` for consent to an object'),
    status: z.enum(['granted', 'denied']).describe('`denied` once `validUntil` has passed'),
    consentAt: z.int().describe('The consent time, ms since the epoch'),
    validUntil: z.int().nullable().describe('ms since the epoch; null: unlimited'),
    source: z.string(),
    expired: z.boolean(),
  });

export const SubjectConsent = z
  .object({
    siteId: z.string(),
    subject,
    linked: z.array(subject).describe('Subjects sharing the profile, this one included'),
    version: z.int().describe('Increases with every change (webhooks carry it)'),
    items: z.record(z.string(), ItemState),
    tcfString: z.string().nullable(),
    gcm: z.record(z.string(), z.enum(['granted', 'denied'])).nullable(),
    consentType: z.string().nullable(),
    geoCountry: z.string().nullable(),
    consentAt: z.int().nullable(),
    updatedAt: z.int(),
  })
  .loose();

const outcome = {
  valid: z.boolean(),
  applied: z.boolean().describe('False when a newer input already decided the item (kept in the audit log only)'),
  duplicate: z.boolean().describe('An identical input was stored before: nothing changed'),
  invalidReason: z.string().optional(),
  revoked: z.literal(true).optional().describe('An invalid input revokes its item'),
};

export const PushAnswer = z
  .object({ subject, created: isoTime, items: z.array(z.object({ item: z.string(), ...outcome })), clientId: z.string().optional().describe('SecurePrivacy ClientId of customUserId') })
  .loose();

/** A Bloomreach event: its attributes at the top level or in `properties`, with the customer's ids. */
const customer = z.object({
  customer_ids: z
    .object({ registered: z.union([z.string(), z.number()]).optional(), email: z.string().optional().describe('A user id, trimmed and lowercased'), cookie: z.union([z.string(), z.number()]).optional() })
    .loose()
    .optional(),
  customer_id: z.union([z.string(), z.number()]).optional(),
  user_id: z.union([z.string(), z.number()]).optional(),
  visitor_id: z.union([z.string(), z.number()]).optional(),
  // Seed bloomreach-tracking-consent.txt: "The event name must be consent"; the route refuses any other.
  event_type: z.literal('consent').optional().describe('Only `consent` (absent: the flat shape, taken as consent); another event type is refused'),
});
/**
 * The attributes nested in `properties`: consentEventSchema itself, but `timestamp` may sit beside
 * `properties` instead (the route merges it in, write-routes.ts eventAttributes), so the document
 * does not require it there (document.ts drops it from `required` for this instance).
 */
export const NestedEventAttributes = consentEventSchema.describe('The event attributes (consentEventSchema); `timestamp` may be given beside `properties` instead');

export const ConsentEvent = z
  .union([z.intersection(customer, consentEventSchema), customer.extend({ timestamp: z.unknown().optional(), properties: NestedEventAttributes })])
  .describe('One consent event (seed bloomreach-tracking-consent.txt): the customer, and the attributes at the top level or in `properties`.');

export const ConsentEventsBody = z.union([ConsentEvent, z.array(ConsentEvent), z.object({ events: z.array(ConsentEvent) })]);

export const EventsAnswer = z
  .object({
    events: z.array(
      z.object({ index: z.int(), stored: z.boolean().describe('False: no customer or no usable category; nothing was kept'), problems: z.array(z.string()).optional(), ...outcome, valid: z.boolean().optional(), applied: z.boolean().optional(), duplicate: z.boolean().optional() }).loose(),
    ),
  });

export const ImportReport = z
  .object({
    rows: z.int(),
    stored: z.int(),
    applied: z.int(),
    duplicates: z.int(),
    invalid: z.int(),
    errors: z.array(z.object({ row: z.int(), error: z.string(), stored: z.boolean() })).describe('Problem rows, at most 1,000'),
    errorsTruncated: z.boolean(),
    tooLarge: z.boolean().optional(),
  })
  .loose();

export const VerifyAnswer = z
  .union([
    z.object({ hasConsent: z.literal(true), categories: z.record(z.string(), z.boolean().nullable()), consentedAt: isoTime.nullable(), geoCountry: z.string().nullable() }).loose(),
    z.object({ hasConsent: z.literal(false), categories: z.null(), consentedAt: z.null(), geoCountry: z.null() }).loose(),
  ])
  .describe('CookieBoss-compatible (seed cookieboss-consent-verification-api.txt); the second form is its "no consent found".');

export const CheckAnswer = z
  .object({
    subject,
    item: z.string(),
    consented: z.boolean(),
    state: z.enum(['granted', 'denied', 'unknown']),
    since: isoTime.optional(),
    validUntil: z.union([isoTime, z.literal('unlimited')]).optional(),
    expired: z.boolean().optional(),
    source: z.string().optional(),
  })
  .loose();

export const AuditEntry = z
  .object({
    seq: z.int(),
    siteId: z.string(),
    subjectKey: z.string().describe('`visitor:<id>` or `user:<id>`'),
    action: z.string().describe('`accept`, `reject`, `record` (a record patch), `expired` (a valid_until passed; changes no state), …'),
    item: z.string().nullable(),
    consentAt: isoTime.nullable(),
    validUntil: z.union([isoTime, z.literal('unlimited')]),
    message: z.string().nullable(),
    source: z.string(),
    identification: z.string().nullable(),
    identificationType: z.string().nullable(),
    importedAt: isoTime,
    apiKeyId: z.string().nullable(),
    payloadHash: z.string(),
    valid: z.boolean(),
    invalidReason: z.string().nullable(),
    applied: z.boolean(),
    dedupKey: z.string(),
    attributes: z.record(z.string(), z.unknown()).nullable(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .loose();

export const Receipt = z
  .object({
    seq: z.int(),
    decidedAt: z.int().describe('ms since the epoch'),
    messageId: z.string(),
    destinationId: z.string(),
    visitorId: z.string().optional(),
    userId: z.string().optional(),
    phase: z.enum(['held', 'decided', 'held_decided', 'unresolved']).describe('`held`: the event began to wait (outcome `hold`, not final); the others are the one final decision of the event × destination'),
    outcome: z.string(),
    reason: z.string(),
    rules: z.array(z.string()),
    mode: z.object({ mode: z.string(), rule: z.string(), region: z.string().optional(), matched: z.string().optional() }).optional(),
    consent: z.record(z.string(), z.object({ status: z.string(), source: z.string(), at: z.int().optional() })).optional(),
    signals: z.record(z.string(), z.unknown()).optional(),
    joined: z.object({ source: z.string(), at: z.int().optional().describe('When the answer was stored or given; absent when nothing was stored'), version: z.int().optional().describe('The consent store profile version the answer was read at') }).optional(),
    delivery: z
      .object({
        status: z.enum(['delivered', 'retrying', 'dead', 'dropped', 'parked']),
        at: z.int().describe('When the result arrived, ms since the epoch'),
        attempt: z.int(),
        httpStatus: z.int().optional(),
        code: z.string().optional().describe('The TW_ERR_* code of a failure or a retry'),
        reason: z.string().optional(),
      })
      .optional()
      .describe('What became of the delivery of a forwarded or redacted event; absent: pending (or nothing to send)'),
  })
  .describe('A decision receipt (docs/receipts.md)');

export const ReceiptPage = z.object({ receipts: z.array(Receipt), nextCursor: z.string().optional().describe('Pass as `cursor` for the next page') });

export const AuditPage = z.object({ entries: z.array(AuditEntry), nextCursor: z.string().optional().describe('Pass as `cursor` for the next page') });

export const ChainVerdict = z
  .object({
    ok: z.boolean(),
    rows: z.int(),
    head: z.object({ seq: z.int(), hash: z.string() }).optional(),
    brokenAt: z.int().optional(),
    reason: z.enum(['hash_mismatch', 'prev_hash_mismatch', 'anchor_missing', 'anchor_mismatch', 'unknown_action', 'malformed_row', 'state_mismatch']).optional(),
    // A row the replay (src/store/replay.ts) cannot apply.
    detail: z.string().optional(),
    // The first difference between the stored state and the state the log implies.
    mismatch: z
      .object({ siteId: z.string(), subject: z.string().optional(), item: z.string().optional(), field: z.string().optional(), stored: z.unknown().optional(), implied: z.unknown().optional() })
      .optional(),
  })
  .loose();

export const ExpireAnswer = z.object({
  events: z.array(z.object({ seq: z.int(), expired: z.boolean().describe('false: it was expired before'), auditSeq: z.int().describe('the seq of its `expire` audit row') })),
  more: z.boolean().describe('by subject: more invalid events are left (call again)'),
});

const filters = z.record(z.string(), z.array(z.string()));

export const Subscription = z
  .object({ id: z.string(), siteId: z.string(), url: z.string(), filters, createdAt: z.int(), disabledAt: z.int().nullable(), disabledReason: z.string().nullable() })
  .loose();

export const SubscriptionCreated = z.object({ id: z.string(), secret: z.string().describe('The signing secret (`whsec_…`), shown this once'), url: z.string(), filters }).loose();

export const PreviewStarted = z.object({
  id: z.string(),
  token: z.string().describe('The preview token: opened in the browser to preview through startUrl, or sent as X-Tagwarden-Preview'),
  expiresAt: z.int().describe('ms since the epoch'),
  mode: z.enum(['test', 'silent']),
  startUrl: z.string().describe('/preview/start?token=…, to open on the tagging domain in the browser to preview'),
});

export const SubscriptionList = z.object({ subscriptions: z.array(Subscription) });

export const DeadLetter = z
  .object({
    hitId: z.int(),
    destinationId: z.string(),
    reason: z.string().nullable(),
    code: z.string().nullable(),
    attempts: z.int(),
    lastStatus: z.int().nullable(),
    excerpt: z.string().nullable(),
    diedAt: isoTime,
    receivedAt: isoTime,
    messageId: z.string().nullable(),
    type: z.string().nullable(),
    event: z.string().nullable(),
  })
  .loose();

export const DeadLetterList = z.object({ deadLetters: z.array(DeadLetter) });
export const Replayed = z.object({ replayed: z.int() });
export const Purged = z.object({ purged: z.int() });

/** The body of every webhook delivery (src/store/webhooks.ts WebhookPayload). */
export const WebhookPayload = z
  .object({
    id: z.string().describe('The delivery id, also sent as `webhook-id`: deduplicate on it'),
    type: z.enum(['consent.changed', 'consent.expired']),
    siteId: z.string(),
    subject,
    version: z.int().describe("The subject's version after the change"),
    items: z.array(ItemState).describe('Items whose state changed, as a read shows them now'),
    recordChanged: z.boolean(),
    at: z.int().describe('When it was written (consent.expired: when the sweep announced it), ms since the epoch'),
  })
  .loose();
