import { randomUUID } from 'node:crypto';
import { validId } from '../identity/visitor.ts';
import { sha256Digest } from '../lib/sha256-digest.ts';
import type { Event, EventContext } from './event.ts';

/**
 * The Meta pixel's browser hits: what fbevents.js (or a `<noscript><img>` tag) sends to `/tr` when a
 * site points the pixel at its tagging domain, turned into the canonical {@link Event}.
 *
 * Parameter facts (sources):
 * - `id` (pixel id), `ev` (standard or custom event name), `cd[k]` (custom data, e.g. `cd[value]`,
 *   `cd[currency]`, `cd[content_ids]`), `noscript`: the image-tag form of the pixel,
 *   https://developers.facebook.com/documentation/meta-pixel/advanced ("Install the Pixel using an
 *   IMG Tag") and https://developers.facebook.com/documentation/meta-pixel/support/pixel-migration.
 * - `eid`: the browser event id; with the event name it is the dedup key Meta matches against the
 *   Conversions API `event_id` of the server event,
 *   https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event
 *   (event_id) and .../conversions-api/deduplicate-pixel-and-server-events.
 * - `ud[k]`: advanced-matching user data (`em`, `ph`, `fn`, `ln`, `ge`, `db`, `ct`, `st`, `zp`,
 *   `country`, `external_id`), which fbevents.js normalises and SHA-256 hashes in the browser
 *   before sending, https://developers.facebook.com/docs/meta-pixel/advanced/advanced-matching.
 *   They are Meta's own matching keys, so they are kept under `context.meta.userData` (read by the
 *   meta-capi template), not as traits other destinations would take for the visitor's.
 * - `cd[k]`: one level of the `fbq('track', name, customData)` object, each value as text, an
 *   array or object JSON-encoded (`cd[contents]=[{"id":"A","quantity":1}]`); the standard keys
 *   are Meta's object properties (https://developers.facebook.com/docs/meta-pixel/reference) and
 *   the Conversions API custom data parameters
 *   (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/custom-data).
 *   `cd[contents]` also gives the canonical `properties.products` (Segment's e-commerce items,
 *   https://segment.com/docs/connections/spec/ecommerce/v2/), so every destination that maps
 *   products (GA4 items) gets them.
 * - `fbp` / `fbc`: the `_fbp` browser id and `_fbc` click id cookies
 *   (`fb.<subdomainIndex>.<creationTime>.<random|fbclid>`),
 *   https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc.
 * - `dl` (document location), `rl` (referrer location), `ts` (event time, ms since the epoch),
 *   `v` (fbevents.js version), `it` (pixel init time), `coo`, `r` (release segment): fbevents.js
 *   hit fields as observed in its requests; `it`/`coo`/`r` carry nothing the canonical event needs and
 *   are ignored.
 */

/** Bounds on an untrusted hit. Over a bound, the hit is invalid (never truncated into a different event). */
export const LIMITS = {
  /** Raw query string length (characters) of a GET hit. */
  query: 8_192,
  params: 200,
  key: 128,
  value: 8_192,
  /** Event names: Meta caps custom event names at 50 characters; a little slack. */
  eventName: 128,
  eventId: 256,
  userAgent: 512,
} as const;

/** Pixel ids are numeric (15–16 digits today). */
const PIXEL_ID = /^[0-9]{1,32}$/;
/**
 * The advanced-matching keys fbevents.js sends (`ud[...]`,
 * https://developers.facebook.com/docs/meta-pixel/advanced/advanced-matching): others are not kept,
 * so nothing unexpected rides along under Meta's user data.
 */
const USER_DATA_KEYS = new Set(['em', 'ph', 'fn', 'ln', 'ge', 'db', 'ct', 'st', 'zp', 'country', 'external_id']);
/** `cd[contents]` is a list of flat objects: nesting deeper than this is refused (kept as text). */
const MAX_CD_DEPTH = 3;
/** Plain decimal numbers only: `1e3`, `0x10`, ` 5` or `Infinity` stay strings. */
const DECIMAL = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;
/** `cd[...]` fields Meta defines as numbers (https://developers.facebook.com/docs/meta-pixel/reference, object properties). */
const NUMERIC_CD = new Set(['value', 'num_items', 'predicted_ltv']);
/** `cd[...]` fields fbevents.js sends as JSON text (arrays of ids / of `{id, quantity}`). */
const JSON_CD = new Set(['contents', 'content_ids']);
const BRACKETED = /^(cd|ud)\[([^\]]+)\]$/;
const ONE_DAY_MS = 86_400_000;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface PixelHitFacts {
  ip?: string;
  userAgent?: string;
  now: Date;
}

/**
 * Why a hit was refused, as a stable code (a log key and label: never the hit's own text): over a
 * bound, or without a valid pixel `id` or event name `ev`.
 */
export type PixelRefusal = 'over_bounds' | 'bad_pixel_id' | 'bad_event_name';

export type PixelParseResult = { ok: true; event: Event } | { ok: false; code: PixelRefusal; reason: string };

/**
 * Parses one `/tr` hit. Pure apart from the random messageId when the hit carries no `eid`; never
 * throws. A repeated parameter is read at its first occurrence.
 */
export function parsePixelHit(params: URLSearchParams, facts: PixelHitFacts): PixelParseResult {
  const first = new Map<string, string>();
  let count = 0;
  for (const [key, value] of params) {
    if (++count > LIMITS.params) return { ok: false, code: 'over_bounds', reason: `more than ${LIMITS.params} parameters` };
    if (key.length > LIMITS.key) return { ok: false, code: 'over_bounds', reason: `a parameter name is longer than ${LIMITS.key} characters` };
    if (value.length > LIMITS.value) return { ok: false, code: 'over_bounds', reason: `${key}: longer than ${LIMITS.value} characters` };
    if (!first.has(key)) first.set(key, value);
  }

  const pixelId = first.get('id');
  if (pixelId === undefined || pixelId === '') return { ok: false, code: 'bad_pixel_id', reason: 'id: required' };
  if (!PIXEL_ID.test(pixelId)) return { ok: false, code: 'bad_pixel_id', reason: 'id: not a pixel id' };
  const ev = first.get('ev')?.trim();
  if (ev === undefined || ev === '') return { ok: false, code: 'bad_event_name', reason: 'ev: required' };
  if (ev.length > LIMITS.eventName || CONTROL.test(ev)) return { ok: false, code: 'bad_event_name', reason: 'ev: not an event name' };

  const properties: Record<string, unknown> = {};
  const userData: Record<string, string> = {};
  for (const [key, value] of first) {
    const m = BRACKETED.exec(key);
    if (m === null) continue;
    const name = m[2]!;
    if (name === '__proto__') continue;
    if (m[1] === 'cd') properties[name] = customValue(name, value);
    // Already hashed in the browser: never re-hashed here. A value that is not a SHA-256 digest
    // (a site bypassing fbevents.js, or a bug) could be plain PII: dropped, external_id included;
    // so is the digest of an empty field, which matches nobody.
    else if (USER_DATA_KEYS.has(name)) {
      const digest = sha256Digest(value);
      if (digest !== undefined) userData[name] = digest;
    }
  }

  const products = productsOf(properties.contents);
  if (products !== undefined && !('products' in properties)) properties.products = products;

  const meta: Record<string, unknown> = { pixelId };
  const fbp = bounded(first.get('fbp'));
  const fbc = bounded(first.get('fbc'));
  if (fbp !== undefined) meta.fbp = fbp;
  if (fbc !== undefined) meta.fbc = fbc;

  const context: EventContext = { meta };
  if (facts.ip !== undefined) context.ip = facts.ip;
  if (facts.userAgent !== undefined) context.userAgent = facts.userAgent.slice(0, LIMITS.userAgent);
  const page = pageOf(first.get('dl'), first.get('rl'));
  if (page !== undefined) context.page = page;
  if (Object.keys(userData).length > 0) meta.userData = userData;
  const version = bounded(first.get('v'));
  if (version !== undefined) context.library = { name: 'fbevents.js', version };

  const eid = first.get('eid')?.trim();
  const event: Event = {
    messageId: eid !== undefined && eid !== '' && eid.length <= LIMITS.eventId && !CONTROL.test(eid) ? eid : randomUUID(),
    type: ev === 'PageView' ? 'page' : 'track',
    timestamp: eventTime(first.get('ts'), facts.now),
    receivedAt: facts.now.toISOString(),
    context,
    properties,
    traits: {},
    integrations: {},
  };
  if (event.type === 'track') event.event = ev;
  const anonymousId = validId(fbp);
  if (anonymousId !== undefined) event.anonymousId = anonymousId;
  return { ok: true, event };
}

/** Numbers for Meta's numeric fields when the text is a plain decimal; JSON for the list fields when it parses; text otherwise. */
function customValue(name: string, value: string): unknown {
  if (NUMERIC_CD.has(name) && DECIMAL.test(value)) {
    const n = Number(value);
    if (Number.isFinite(n)) return n;
  }
  if (JSON_CD.has(name)) {
    try {
      const parsed = JSON.parse(value) as unknown;
      if (parsed !== null && typeof parsed === 'object' && depthAtMost(parsed, MAX_CD_DEPTH)) return parsed;
    } catch {
      // not JSON: kept as sent
    }
  }
  return value;
}

/** True when `v` nests no deeper than `max` levels (objects and arrays); stops at the bound. */
function depthAtMost(v: unknown, max: number): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (max <= 0) return false;
  for (const child of Object.values(v)) if (!depthAtMost(child, max - 1)) return false;
  return true;
}

/**
 * Meta's `contents` (`[{id, quantity, item_price, ...}]`) as Segment products
 * (`[{product_id, quantity, price}]`); elements without an id are left out. Undefined when nothing
 * is left or `contents` is not an array.
 */
function productsOf(contents: unknown): Record<string, unknown>[] | undefined {
  if (!Array.isArray(contents)) return undefined;
  const products: Record<string, unknown>[] = [];
  for (const c of contents as unknown[]) {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) continue;
    const { id, quantity, item_price: price } = c as Record<string, unknown>;
    if ((typeof id !== 'string' || id === '') && typeof id !== 'number') continue;
    const product: Record<string, unknown> = { product_id: String(id) };
    if (typeof quantity === 'number' || typeof quantity === 'string') product.quantity = quantity;
    if (typeof price === 'number' || typeof price === 'string') product.price = price;
    products.push(product);
  }
  return products.length > 0 ? products : undefined;
}

function bounded(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' || t.length > 512 || CONTROL.test(t) ? undefined : t;
}

function pageOf(dl: string | undefined, rl: string | undefined): EventContext['page'] {
  const page: NonNullable<EventContext['page']> = {};
  if (dl !== undefined && dl !== '') {
    page.url = dl;
    const u = URL.parse(dl);
    if (u !== null && (u.protocol === 'http:' || u.protocol === 'https:')) {
      page.path = u.pathname;
      if (u.search !== '') page.search = u.search;
    }
  }
  if (rl !== undefined && rl !== '') page.referrer = rl;
  return Object.keys(page).length > 0 ? page : undefined;
}

/** `ts` (ms) when it is an integer within a day of reception; the reception time otherwise (a wrong device clock). */
function eventTime(ts: string | undefined, now: Date): string {
  if (ts !== undefined && /^[0-9]{1,15}$/.test(ts)) {
    const ms = Number(ts);
    if (Math.abs(ms - now.getTime()) <= ONE_DAY_MS) return new Date(ms).toISOString();
  }
  return now.toISOString();
}
