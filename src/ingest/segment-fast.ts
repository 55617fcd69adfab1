import type { EventType } from './event.ts';
import { LIMITS } from './segment-limits.ts';

/**
 * A quick pre-check of the one Segment validator, the zod schema in segment.ts: plain checks that
 * accept an input only when the schema would accept it unchanged (string ids; null only where the
 * schema takes it as absent). Anything else, including every invalid input, goes to zod, which
 * then decides and explains what is wrong. Measured in bench/: zod's validation of a typical
 * 660-byte `track` costs about 8 µs on the reference machine, this about 1 µs.
 *
 * Its bounds are the schema's (LIMITS, segment-limits.ts). segment-fast.test.ts holds it to the
 * schema: it walks the schema (as JSON Schema) and checks this at every field's bound, its bound
 * plus one, null and a wrong type, and a property test checks that whatever this accepts zod
 * accepts unchanged, into the same event. A field added to the schema fails those tests until it
 * is checked here.
 */

type Rec = Record<string, unknown>;

function isRecord(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(v: unknown, max: number): boolean {
  return v === undefined || (typeof v === 'string' && v.length <= max);
}

/** As optString, null meaning absent (the fields segment.ts declares nullable). */
function nullableString(v: unknown, max: number): boolean {
  return v === null || optString(v, max);
}

function id(v: unknown): boolean {
  return typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.id;
}

function nullableId(v: unknown): boolean {
  return v === undefined || v === null || id(v);
}

function optDate(v: unknown): boolean {
  return v === undefined || (typeof v === 'string' && v.length <= LIMITS.date && !Number.isNaN(Date.parse(v)));
}

function optRecord(v: unknown): boolean {
  return v === undefined || isRecord(v);
}

function nullableRecord(v: unknown): boolean {
  return v === null || optRecord(v);
}

function page(v: unknown): boolean {
  if (v === undefined) return true;
  if (!isRecord(v)) return false;
  return (
    nullableString(v.url, LIMITS.pageText) &&
    nullableString(v.path, LIMITS.pageText) &&
    nullableString(v.referrer, LIMITS.pageText) &&
    nullableString(v.title, LIMITS.pageTitle) &&
    nullableString(v.search, LIMITS.pageText)
  );
}

function context(v: unknown): boolean {
  if (v === undefined) return true;
  if (!isRecord(v)) return false;
  return (
    optString(v.ip, LIMITS.ip) &&
    optString(v.userAgent, LIMITS.userAgent) &&
    optString(v.locale, LIMITS.locale) &&
    page(v.page) &&
    optRecord(v.traits) &&
    optRecord(v.consent)
  );
}

/** True when `raw` is certainly valid for `type` as the zod schema defines it. */
export function fastValid(raw: Rec, type: EventType): boolean {
  const common =
    optString(raw.type, Number.POSITIVE_INFINITY) &&
    (raw.messageId === undefined || id(raw.messageId)) &&
    optDate(raw.timestamp) &&
    optDate(raw.originalTimestamp) &&
    optDate(raw.sentAt) &&
    nullableId(raw.anonymousId) &&
    nullableId(raw.userId) &&
    context(raw.context) &&
    optRecord(raw.integrations) &&
    nullableRecord(raw.properties) &&
    nullableRecord(raw.traits) &&
    optString(raw.channel, LIMITS.channel) &&
    optString(raw.writeKey, LIMITS.writeKey);
  if (!common) return false;
  switch (type) {
    case 'track':
      return typeof raw.event === 'string' && raw.event.length >= 1 && raw.event.length <= LIMITS.name;
    case 'page':
      return nullableString(raw.name, LIMITS.name) && nullableString(raw.category, LIMITS.name);
    case 'screen':
      return optString(raw.name, LIMITS.name);
    case 'identify':
      return true;
    case 'group':
      return id(raw.groupId);
    case 'alias':
      return id(raw.previousId) && id(raw.userId);
  }
}
