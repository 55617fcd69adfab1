import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ConsentInput, RecordPatch, SubjectRef } from '../../store/types.ts';
import { createTcfReader } from '../../consent/tcf.ts';
import { MAX_SUBJECT_ID, queryItemSchema, subjectIdSchema } from './ids.ts';
import { eventEvidence, SEED_SOURCES } from './event-attributes.ts';

/**
 * Consent inputs as the API receives them, turned into store inputs. Three shapes:
 * - Bloomreach consent events (seed bloomreach-tracking-consent.txt): `action`, `category`,
 *   `timestamp`, `valid_until` (required when accepting: `unlimited` or a timestamp), plus
 *   `message`, `source`, `identification`, `identification_type`; single or batch. An invalid event
 *   is kept (audit) and REVOKES its category for that customer: it is never dropped silently and
 *   never leaves consent unchanged.
 * - CSV rows `action,category,valid_until,timestamp,customer_id` (the same rules; source `import`).
 * - Pushes (Seeka, SecurePrivacy): categories with states, TCF string, gcm flags, reference,
 *   consent type, for a visitor and/or a user.
 */

export const MAX_ID = MAX_SUBJECT_ID;
export const MAX_ITEM = 128;
const ITEM = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The last instant any consent time may name: 9999-12-31T23:59:59.999Z. A time beyond it is a unit
 * mistake (microseconds, or seconds read as milliseconds), never a date.
 */
export const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * ISO 8601 as RFC 3339 profiles it: a date and a time WITH a zone (`Z`, `±hh:mm`, `±hhmm`, `±hh`),
 * `T` or a space between them, seconds and a fraction optional; or a date alone, which is midnight
 * UTC (as ECMAScript reads a date-only form). A date and time without a zone is refused: V8 reads
 * it in the server's own time zone, so the same text would name different instants on different
 * servers. https://www.rfc-editor.org/rfc/rfc3339#section-5.6
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?))?$/;

function isoTime(v: string): number | undefined {
  const m = ISO.exec(v);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, sec, frac, z, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  // Before 1970 is refused like a number ≤ 0 is (and Date.UTC would read years 0-99 as 19xx).
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  if (h === undefined) return Date.UTC(year, month - 1, day);
  if (z === undefined && sign === undefined) return undefined;
  const hour = Number(h);
  const minute = Number(mi);
  const second = sec === undefined ? 0 : Number(sec);
  const offsetH = oh === undefined ? 0 : Number(oh);
  const offsetM = om === undefined ? 0 : Number(om);
  // No leap second (:60) and no 24:00: Date.parse refuses them too, and no consent needs them.
  if (hour > 23 || minute > 59 || second > 59 || offsetH > 23 || offsetM > 59) return undefined;
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  const offset = (sign === '-' ? -1 : 1) * (offsetH * 60 + offsetM) * 60_000;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset;
}

/**
 * A time as milliseconds, or undefined: unix seconds (what Bloomreach sends), milliseconds (≥ 1e11),
 * either as digits, or ISO 8601 with a zone (`isoTime`). The magnitude decides seconds from
 * milliseconds, as before; microseconds therefore read as milliseconds tens of thousands of years
 * ahead, beyond MAX_TIME, and are refused. Only the format and that bound are checked here;
 * `consentTime` adds "not in the future".
 */
export function parseTime(v: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) return undefined;
    ms = Math.round(v >= 1e11 ? v : v * 1000);
  } else if (typeof v === 'string' && v.length > 0 && v.length <= 64) {
    ms = /^\d{1,20}(\.\d{1,9})?$/.test(v) ? parseTime(Number(v)) : isoTime(v);
  }
  return ms !== undefined && ms > 0 && ms <= MAX_TIME ? ms : undefined;
}

/** A time filter of a query string (audit, receipts): what `parseTime` reads, as milliseconds. */
export const queryTimeSchema = z
  .string()
  .max(64)
  .transform((v, ctx) => {
    const t = parseTime(v);
    if (t === undefined) {
      ctx.addIssue({ code: 'custom', message: 'unix seconds, milliseconds or ISO 8601' });
      return z.NEVER;
    }
    return t;
  })
  .optional();

export const TIME_FORMAT = 'unix seconds, milliseconds or ISO 8601 with a zone (Z or ±hh:mm), up to the year 9999';

/** A time read and checked (`consentTime`): milliseconds, or why it was refused (the field's name not included). */
export type TimeCheck = { ok: true; ms: number } | { ok: false; error: string };

/**
 * THE check of a consent's own time, for pushes, Bloomreach events and CSV rows alike: present, in
 * a format `parseTime` reads, and at most `skewMs` ahead of the server's `now`
 * (`site.consentClockSkewMs`). Last-write-wins goes by this time, so a time from the future would
 * outrank every later revocation until that date: it is refused, never stored.
 */
export function consentTime(v: unknown, now: number, skewMs: number): TimeCheck {
  if (v === undefined || v === null || v === '') return { ok: false, error: 'required' };
  const ms = parseTime(v);
  if (ms === undefined) return { ok: false, error: TIME_FORMAT };
  if (ms > now + skewMs) return { ok: false, error: `in the future: more than ${skewMs} ms after the server's time ${new Date(now).toISOString()}` };
  return { ok: true, ms };
}

/**
 * SHA-256 (hex) of an input as received: a string as is, anything else as its JSON text. Safe for
 * any value: JSON.stringify throws on nesting deeper than the stack (issue 13: a body nested 5,000
 * deep was a 500), on cycles and on BigInt, and then the value is walked without recursion
 * instead. Values JSON.stringify can write keep exactly that text, so hashes (and the dedup keys
 * made of them) stay what they were.
 */
export function payloadHash(raw: unknown): string {
  const hash = createHash('sha256');
  if (typeof raw === 'string') return hash.update(raw).digest('hex');
  let text: string | undefined;
  try {
    text = JSON.stringify(raw) ?? '';
  } catch {
    text = undefined;
  }
  if (text !== undefined) return hash.update(text).digest('hex');
  // Depth-first with an explicit stack of what is left to write; an object met twice is written
  // as a marker (a cycle has no JSON text).
  const seen = new Set<object>();
  const stack: unknown[] = [raw];
  const LITERAL = Symbol('literal');
  const lit = (t: string): { [LITERAL]: string } => ({ [LITERAL]: t });
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'object' && v !== null && LITERAL in v) {
      hash.update((v as { [LITERAL]: string })[LITERAL]);
      continue;
    }
    if (typeof v === 'bigint') hash.update(`"${v.toString()}n"`);
    else if (typeof v !== 'object' || v === null) hash.update(JSON.stringify(v) ?? 'null');
    else if (seen.has(v)) hash.update('"[repeated]"');
    else {
      seen.add(v);
      const parts: unknown[] = [];
      if (Array.isArray(v)) {
        parts.push(lit('['));
        v.forEach((e: unknown, i) => parts.push(...(i === 0 ? [] : [lit(',')]), e));
        parts.push(lit(']'));
      } else {
        parts.push(lit('{'));
        Object.keys(v).forEach((k, i) => parts.push(lit(`${i === 0 ? '' : ','}${JSON.stringify(k)}:`), (v as Record<string, unknown>)[k]));
        parts.push(lit('}'));
      }
      for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]);
    }
  }
  return hash.digest('hex');
}

function text(v: unknown, max: number): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined;
}

export interface EventContext {
  siteId: string;
  subject: SubjectRef;
  source: string;
  apiKeyId?: string;
  now: number;
  /** How far ahead of `now` the event's time may be (`site.consentClockSkewMs`). */
  skewMs: number;
  /** The event's `customer_ids` as sent: kept in the audit attributes (event-attributes.ts). */
  customerIds?: unknown;
}

/**
 * A time as Bloomreach sends it (unix seconds), milliseconds, or ISO 8601 with a zone, read into
 * milliseconds (`parseTime`). A schema cannot know the server's time: the routes check the bound
 * with `consentTime` before storing anything.
 */
const time = (name: string) =>
  z.union([z.number(), z.string()], { error: `${name}: ${TIME_FORMAT}` }).transform((v, ctx) => {
    const t = parseTime(v);
    if (t === undefined) {
      ctx.addIssue({ code: 'custom', message: `${name}: ${TIME_FORMAT}` });
      return z.NEVER;
    }
    return t;
  });

const optionalText = (name: string, max: number) => z.string({ error: `${name}: a string of at most ${max} characters` }).min(1, `${name}: a string of at most ${max} characters`).max(max, `${name}: a string of at most ${max} characters`).nullish();

/**
 * The attributes of a Bloomreach consent event (seed bloomreach-tracking-consent.txt): `action`,
 * `category` and `timestamp` required, `valid_until` required when accepting.
 */
export const consentEventSchema = z
  .object({
    action: z.enum(['accept', 'reject'], { error: (i) => (i.input === undefined ? 'action: required' : 'action: must be accept or reject') }),
    category: z.string({ error: (i) => (i.input === undefined ? 'category: required' : 'category: 1-128 letters, digits, _ . : -') }).regex(ITEM, 'category: 1-128 letters, digits, _ . : -'),
    timestamp: z.unknown().refine((v) => v !== undefined, 'timestamp: required').pipe(time('timestamp')),
    valid_until: z.unknown().transform((v, ctx): number | 'unlimited' | undefined => {
      if (v === undefined || v === null || v === '') return undefined;
      if (v === 'unlimited') return 'unlimited';
      const t = parseTime(v);
      if (t === undefined) {
        ctx.addIssue({ code: 'custom', message: 'valid_until: unlimited or a timestamp' });
        return z.NEVER;
      }
      return t;
    })
      .optional(),
    message: optionalText('message', 4096),
    // The seed's "Source values" table; any other value is an invalid event, which revokes, as the
    // seed's "Invalid consent events revoke consent" does for an unrecognized action value.
    source: z.enum(SEED_SOURCES, { error: `source: one of ${SEED_SOURCES.join(', ')}` }).nullish(),
    // "Email of the person who provided the consent": evidence only (RFC 5321 allows 320 characters).
    email: optionalText('email', 320),
    identification: optionalText('identification', 256),
    identification_type: optionalText('identification_type', 256),
  })
  .loose()
  .superRefine((e, ctx) => {
    if (e.action === 'accept' && e.valid_until === undefined) {
      ctx.addIssue({ code: 'custom', path: ['valid_until'], message: 'valid_until: required when action is accept (unlimited or a timestamp)' });
    }
  });

/**
 * One Bloomreach-shaped consent event for a known subject, validated by `consentEventSchema`. An
 * event with a usable category gets an input either way (valid, or invalid and revoking: applied
 * as a reject); one without a usable category cannot revoke anything specific and is reported only.
 * Its attributes as sent (seed and custom ones, `customer_ids`, our `imported_timestamp`) go to the
 * audit record as `attributes` (event-attributes.ts); evidence beyond the bounds makes it invalid.
 */
export function consentEventInput(raw: Record<string, unknown>, ctx: EventContext): { input?: ConsentInput; problems: string[] } {
  const parsed = consentEventSchema.safeParse(raw);
  const evidence = eventEvidence(raw, { source: ctx.source, now: ctx.now, ...(ctx.customerIds === undefined ? {} : { customerIds: ctx.customerIds }) });
  const problems = [...new Set([...(parsed.success ? [] : parsed.error.issues.map((i) => i.message)), ...evidence.problems])];
  // Last-write-wins orders consents by their own time: an event without a usable one (missing,
  // unreadable, or beyond now + skew) cannot be placed, so it is reported and not stored. Dated
  // "now" instead, it would revoke and outrank older events sent after it (issue 13).
  const when = consentTime(raw.timestamp, ctx.now, ctx.skewMs);
  if (!when.ok) return { problems: [`timestamp: ${when.error}`, ...problems.filter((p) => !p.startsWith('timestamp:'))] };
  const item = typeof raw.category === 'string' && ITEM.test(raw.category) ? raw.category : undefined;
  if (item === undefined) return { problems };
  const valid = parsed.success && problems.length === 0;
  const consentAt = when.ms;
  const validUntil = valid && parsed.success ? (typeof parsed.data.valid_until === 'number' ? parsed.data.valid_until : null) : null;
  // Only a seed source value reaches the state (webhook filters, the item's source): an unknown
  // one stays in the attributes as sent, and the event is invalid.
  const sent = (SEED_SOURCES as readonly unknown[]).includes(raw.source) ? (raw.source as string) : undefined;
  const input: ConsentInput = {
    siteId: ctx.siteId,
    subject: ctx.subject,
    action: valid && parsed.success ? parsed.data.action : 'reject',
    item,
    consentAt,
    validUntil,
    source: sent ?? ctx.source,
    valid,
    payloadHash: payloadHash(raw),
    attributes: evidence.attributes,
  };
  if (!valid) input.invalidReason = problems.join('; ');
  const message = text(raw.message, 4096);
  if (message !== undefined) input.message = message;
  const identification = text(raw.identification, 256);
  if (identification !== undefined) input.identification = identification;
  const identificationType = text(raw.identification_type, 256);
  if (identificationType !== undefined) input.identificationType = identificationType;
  if (ctx.apiKeyId !== undefined) input.apiKeyId = ctx.apiKeyId;
  return { input, problems };
}

export const CSV_COLUMNS = ['action', 'category', 'valid_until', 'timestamp', 'customer_id'] as const;

/** Column positions from the header row; an error when a required column is missing or repeated. */
export function csvHeader(fields: readonly string[]): Record<(typeof CSV_COLUMNS)[number], number> | string {
  const names = fields.map((f) => f.trim().toLowerCase());
  const out: Partial<Record<(typeof CSV_COLUMNS)[number], number>> = {};
  for (const c of CSV_COLUMNS) {
    const at = names.indexOf(c);
    if (at === -1) return `missing column ${c} (expected ${CSV_COLUMNS.join(',')})`;
    if (names.lastIndexOf(c) !== at) return `column ${c} appears twice`;
    out[c] = at;
  }
  return out as Record<(typeof CSV_COLUMNS)[number], number>;
}

const isoOrSeconds = z.union([z.string().max(64), z.number()]);

/**
 * The TC strings a push may store: what the bounded reader (src/consent/tcf.ts: length, the range
 * guard of src/consent/tcf-guard.ts, then the decoder) can decode. Well-formed strings the hit path
 * would still not honour (policy version too old, not service-specific, expired or from the future
 * at the time of a hit) are kept: that is decided per hit, as for a string a hit carries.
 */
const TCF_MAX = 16_384;
const tcfReader = createTcfReader({ maxLength: TCF_MAX, maxAgeMs: Number.MAX_SAFE_INTEGER, cacheEntries: 256, cacheMaxBytes: 4 * 1024 * 1024 });
const UNDECODABLE = new Set(['tcf_too_long', 'tcf_rejected_by_guard', 'tcf_undecodable', 'tcf_wrong_version']);

/** Why `tc` is not a TCF v2 TC string, or undefined when it decodes. */
export function tcfProblem(tc: string): string | undefined {
  const r = tcfReader.read(tc, new Date(0));
  return !r.ok && UNDECODABLE.has(r.reason) ? `not a TCF v2 TC string (${r.reason})` : undefined;
}

const tcfString = z
  .string()
  .min(1)
  .max(TCF_MAX)
  .superRefine((v, ctx) => {
    const problem = tcfProblem(v);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

/** An object reference becomes the item `ref:<reference>`: the store's item rule (src/store/ids.ts) applies. */
const reference = queryItemSchema(512);

/** A push: consent for a visitor and/or a user, in Tagwarden's shape, SecurePrivacy's or Seeka's identity payload. */
export const pushSchema = z
  .object({
    visitorId: subjectIdSchema.optional(),
    userId: subjectIdSchema.optional(),
    customUserId: subjectIdSchema.optional().describe('SecurePrivacy CustomUserId: a user id whose stable ClientId is returned'),
    // `__proto__` cannot be a key of the record zod builds (it would be dropped silently): refused.
    categories: z.record(z.string().regex(ITEM).refine((k) => k !== '__proto__', 'categories: __proto__ cannot be a category name'), z.union([z.boolean(), z.enum(['granted', 'denied'])])).optional(),
    consentGiven: z.enum(['All', 'Partial', 'None']).optional(),
    reference: reference.optional(),
    consentType: z.string().min(1).max(128).optional(),
    timestamp: isoOrSeconds.optional(),
    validUntil: z.union([z.literal('unlimited'), isoOrSeconds]).optional(),
    tcfString: tcfString.optional(),
    // partialRecord: any subset of the four flags (z.record with an enum key requires all four).
    gcm: z.partialRecord(z.enum(['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization']), z.enum(['granted', 'denied'])).optional(),
    source: z.string().min(1).max(256).optional(),
    message: z.string().max(4096).optional(),
    geoCountry: z.string().regex(/^[A-Z]{2}$/).optional(),
    consent: z
      .object({ privacy: z.object({ tcfConsentString: tcfString }).loose().optional() })
      .loose()
      .optional()
      .describe("Seeka's identity payload: consent.privacy.tcfConsentString"),
  })
  .loose();

export type PushBody = z.output<typeof pushSchema>;

/** A problem of a push: the field (its path in the body) and what is wrong with it. */
export interface PushIssue {
  path: string;
  message: string;
}

/**
 * The inputs and record patch of a push; `subject` is the first of visitor, user (or client id).
 * The consent time is `timestamp` (checked by `consentTime`: a time beyond now + `skewMs` is
 * refused) or, without one, the push's arrival.
 */
export function pushInputs(
  body: PushBody,
  raw: unknown,
  ctx: { siteId: string; subject: SubjectRef; links: SubjectRef[]; source: string; apiKeyId?: string; now: number; skewMs: number },
): { inputs: ConsentInput[]; patch?: RecordPatch; problems: PushIssue[] } {
  const problems: PushIssue[] = [];
  let consentAt = ctx.now;
  if (body.timestamp !== undefined) {
    const t = consentTime(body.timestamp, ctx.now, ctx.skewMs);
    if (t.ok) consentAt = t.ms;
    else problems.push({ path: 'timestamp', message: t.error });
  }
  let validUntil: number | null = null;
  if (body.validUntil !== undefined && body.validUntil !== 'unlimited') {
    const t = parseTime(body.validUntil);
    if (t === undefined) problems.push({ path: 'validUntil', message: `unlimited or a timestamp (${TIME_FORMAT})` });
    else validUntil = t;
  }
  if (problems.length > 0) return { inputs: [], problems };
  const hash = payloadHash(raw);
  const base = { siteId: ctx.siteId, subject: ctx.subject, links: ctx.links, consentAt, source: body.source ?? ctx.source, valid: true, payloadHash: hash };
  const inputs: ConsentInput[] = [];
  const add = (item: string, granted: boolean): void => {
    const input: ConsentInput = { ...base, action: granted ? 'accept' : 'reject', item, validUntil: granted ? validUntil : null };
    if (body.message !== undefined) input.message = body.message;
    if (ctx.apiKeyId !== undefined) input.apiKeyId = ctx.apiKeyId;
    inputs.push(input);
  };
  for (const [item, v] of Object.entries(body.categories ?? {})) add(item, v === true || v === 'granted');
  // SecurePrivacy's object consent: All grants the reference, None denies it; Partial says
  // neither, so the categories (if any) carry it.
  if (body.reference !== undefined && body.consentGiven !== undefined && body.consentGiven !== 'Partial') add(`ref:${body.reference}`, body.consentGiven === 'All');
  const tcf = body.tcfString ?? body.consent?.privacy?.tcfConsentString;
  let patch: RecordPatch | undefined;
  if (tcf !== undefined || body.gcm !== undefined || body.consentType !== undefined || body.geoCountry !== undefined) {
    patch = { siteId: ctx.siteId, subject: ctx.subject, consentAt, source: base.source, payloadHash: hash };
    if (ctx.apiKeyId !== undefined) patch.apiKeyId = ctx.apiKeyId;
    if (tcf !== undefined) patch.tcfString = tcf;
    if (body.gcm !== undefined) patch.gcm = body.gcm;
    if (body.consentType !== undefined) patch.consentType = body.consentType;
    if (body.geoCountry !== undefined) patch.geoCountry = body.geoCountry;
  }
  if (inputs.length === 0 && patch === undefined) problems.push({ path: '', message: 'nothing to record: give categories, a reference with consentGiven, tcfString, consent.privacy.tcfConsentString or gcm' });
  return patch === undefined ? { inputs, problems } : { inputs, patch, problems };
}
