import { createHash, randomUUID } from 'node:crypto';
import type { Event, EventContext, EventType } from './event.ts';
import { LIMITS } from './segment-limits.ts';
import { FORBIDDEN_KEYS } from '../lib/dotted.ts';

/**
 * The GA4 client: turns the hits gtag.js sends to `/g/collect` (when a site sets
 * `server_container_url` / `transport_url`) into canonical Events.
 *
 * The wire format is not officially documented; it is the browser flavour of Measurement Protocol v2
 * as described by practitioners who read the requests:
 * - https://googleanalytics4.co/implementation/how-google-analytics-4-collects-data-for-web/
 *   (core parameters `v`, `tid`, `cid`, `sid`, `sct`, `seg`, `_p`, `dl`, `dr`, `dt`, `ul`, `sr`, `en`;
 *   event parameters `ep.<name>` (string) / `epn.<name>` (number); user properties `up.` / `upn.`)
 * - https://osipenkov.ru/ga4-measurement-protocol-cheatsheet/ (the same table, plus `_s` hit counter,
 *   `_et` engagement time, `uid`, `gcs` / `gcd` consent mode, `dma`, `npa`, `cu` currency)
 * - https://blog.thyngster.com/category/ga4 (building hits by hand: `seg`, `sct`, `_s`, batching)
 * gtag.js batches: one POST whose URL carries the parameters shared by the batch and whose body holds
 * one hit per line, each line a query string; a line's parameters win over the URL's.
 */

export interface Ga4Facts {
  ip?: string | undefined;
  userAgent?: string | undefined;
  /** Reception time, also the event's timestamp. */
  now: Date;
}

export interface Ga4Limits {
  /** Hits per request; lines beyond it are counted as rejected. */
  maxHits: number;
  /** Parameters per hit (URL and line together); room for GA4's 200 items (`pr1`…) and the rest. */
  maxParams: number;
  /** Length of a parameter name. */
  maxKeyLength: number;
  /** Length of a parameter value. */
  maxValueLength: number;
}

export const DEFAULT_GA4_LIMITS: Ga4Limits = { maxHits: 25, maxParams: 400, maxKeyLength: 128, maxValueLength: LIMITS.pageText };

export interface Ga4Hit {
  event: Event;
  /** Index of the hit's line in the body (0 when the URL alone is the hit). */
  line: number;
  /** The hit's own parameters (URL merged with its line): what consent signals are read from. */
  params: URLSearchParams;
}

/** Why a hit was refused: beyond maxHits, over a bound (parameters, key or value length), or without `v=2`, `tid` or `en`. */
export type Ga4Refusal = 'too_many_hits' | 'over_bounds' | 'missing_v2_tid_en';

export interface Ga4ParseResult {
  hits: Ga4Hit[];
  /** Lines refused: malformed, over the bounds, missing `v=2` / `tid` / `en`, or beyond maxHits. */
  rejected: number;
  /** Why each refused line was refused (line index, as in {@link Ga4Hit.line}): a code for logs and metrics, a reason for /debug/explain. */
  issues: { line: number; code: Ga4Refusal; reason: string }[];
}

/**
 * GA-specific parameters kept as sent under `context.ga4`, for destinations that forward to GA4 and
 * need them back: protocol version, container, page load id, hit counter, session id / count /
 * engagement, engagement time, first visit / session start flags, consent mode and
 * ad-personalisation signals, debug mode (`_dbg`, what DebugView shows), and the user-agent client
 * hints gtag.js reads from `navigator.userAgentData` (`uaa` architecture, `uab` bitness, `uafvl`
 * full version list, `uamb` mobile, `uam` model, `uap` platform, `uapv` platform version, `uaw`
 * WoW64), which GA4 uses for device and browser reports now that browsers reduce the User-Agent.
 */
const GA4_PASSTHROUGH = [
  'v', 'gtm', '_p', '_s', 'sid', 'sct', 'seg', '_et', '_fv', '_ss', '_nsi', '_ee', 'dma', 'dma_cps', 'npa', 'gcs', 'gcd', 'tfd', '_dbg',
  'uaa', 'uab', 'uafvl', 'uamb', 'uam', 'uap', 'uapv', 'uaw',
] as const;

const EMPTY = new URLSearchParams();

/**
 * Parses the hits of one `/g/collect` request. `query` is the URL's query string (parameters shared
 * by every hit), `body` the POST body if any (one hit per non-empty line); without a body, or with a
 * blank one, the URL alone is the hit. Never throws: what cannot be read is counted in `rejected`.
 */
export function parseGa4Hits(query: URLSearchParams, body: string | undefined, facts: Ga4Facts, limits: Partial<Ga4Limits> = {}): Ga4ParseResult {
  const lim = { ...DEFAULT_GA4_LIMITS, ...limits };
  const lines = body === undefined ? [] : body.split(/\r?\n/).filter((l) => l.trim() !== '');
  const sources = lines.length === 0 ? [undefined] : lines;
  const hits: Ga4Hit[] = [];
  const issues: Ga4ParseResult['issues'] = [];
  const several = sources.length > 1;
  for (let i = 0; i < Math.min(sources.length, lim.maxHits); i++) {
    const params = merge(query, sources[i], lim);
    if (typeof params === 'string') {
      issues.push({ line: i, code: 'over_bounds', reason: params });
      continue;
    }
    const event = toEvent(params, facts, several ? i : undefined);
    if (typeof event === 'string') issues.push({ line: i, code: 'missing_v2_tid_en', reason: event });
    else hits.push({ event, line: i, params });
  }
  for (let i = lim.maxHits; i < sources.length; i++) issues.push({ line: i, code: 'too_many_hits', reason: `more than ${lim.maxHits} hits in one request` });
  return { hits, rejected: issues.length, issues };
}

/** URL parameters, then the line's replacing them (as gtag does); why not when over the bounds. */
function merge(shared: URLSearchParams, line: string | undefined, lim: Ga4Limits): URLSearchParams | string {
  let own: URLSearchParams;
  try {
    own = line === undefined ? EMPTY : new URLSearchParams(line.trim());
  } catch {
    return 'not a query string';
  }
  const out = new URLSearchParams();
  const seen = new Set<string>();
  for (const [k, v] of own) {
    if (!seen.has(k)) out.append(k, v);
    seen.add(k);
  }
  for (const [k, v] of shared) if (!seen.has(k)) out.append(k, v);
  if (out.size > lim.maxParams) return `more than ${lim.maxParams} parameters`;
  for (const [k, v] of out) {
    if (k.length > lim.maxKeyLength) return `a parameter name is longer than ${lim.maxKeyLength} characters`;
    if (v.length > lim.maxValueLength) return `${k.slice(0, 32)}: longer than ${lim.maxValueLength} characters`;
  }
  return out;
}

/** The hit's event, or why it is not one. */
function toEvent(p: URLSearchParams, facts: Ga4Facts, line: number | undefined): Event | string {
  const tid = text(p.get('tid'), LIMITS.id);
  const en = text(p.get('en'), LIMITS.name);
  if (p.get('v') !== '2') return 'v: must be 2 (GA4)';
  if (tid === undefined) return `tid: required (the measurement id, at most ${LIMITS.id} characters)`;
  if (en === undefined) return `en: required (the event name, at most ${LIMITS.name} characters)`;
  const cid = text(p.get('cid'), LIMITS.id);
  const uid = text(p.get('uid'), LIMITS.id);

  const properties: Record<string, unknown> = {};
  const traits: Record<string, unknown> = {};
  for (const [k, value] of p) {
    const dot = k.indexOf('.');
    if (dot <= 0) continue;
    const name = k.slice(dot + 1);
    if (name === '' || FORBIDDEN_KEYS.has(name)) continue;
    const prefix = k.slice(0, dot);
    const target = prefix === 'ep' || prefix === 'epn' ? properties : prefix === 'up' || prefix === 'upn' ? traits : undefined;
    if (target === undefined) continue;
    if (prefix === 'ep' || prefix === 'up') target[name] = value;
    else {
      const n = Number(value);
      // A number parameter that is not a number is dropped, not kept as text of the wrong type.
      if (value.trim() !== '' && Number.isFinite(n)) target[name] = n;
    }
  }

  // gtag.js sends an ecommerce event's currency as `cu`, not as an event parameter.
  const cu = text(p.get('cu'), 16);
  if (cu !== undefined && properties.currency === undefined) properties.currency = cu;
  const items = itemParams(p);
  if (items.length > 0 && properties.products === undefined) properties.products = items.map(([, raw]) => productOf(raw));

  const context: EventContext = {};
  if (facts.ip !== undefined) context.ip = facts.ip;
  if (facts.userAgent !== undefined) context.userAgent = facts.userAgent.slice(0, LIMITS.userAgent);
  const locale = text(p.get('ul'), LIMITS.locale);
  if (locale !== undefined) context.locale = locale;
  const page = pageOf(p);
  if (page !== undefined) context.page = page;
  const screen = /^(\d{1,6})x(\d{1,6})$/.exec(p.get('sr') ?? '');
  if (screen) context.screen = { width: Number(screen[1]), height: Number(screen[2]) };
  const ga4: Record<string, unknown> = { measurementId: tid };
  for (const key of GA4_PASSTHROUGH) {
    const value = p.get(key);
    if (value !== null) ga4[key] = value;
  }
  // The item parameters as sent (`pr1` → its text), for a template forwarding the hit to GA4.
  if (items.length > 0) ga4.items = Object.fromEntries(items.map(([n, raw]) => [`pr${n}`, raw]));
  context.ga4 = ga4;

  const type: EventType = en === 'page_view' ? 'page' : 'track';
  const now = facts.now.toISOString();
  const event: Event = {
    messageId: messageId(tid, cid, p.get('_p'), p.get('_s'), en, line),
    type,
    timestamp: now,
    receivedAt: now,
    context,
    properties: type === 'page' ? { ...pageProperties(page), ...properties } : properties,
    traits,
    integrations: {},
  };
  if (type === 'track') event.event = en;
  else if (page?.title !== undefined) event.name = page.title;
  if (cid !== undefined) event.anonymousId = cid;
  if (uid !== undefined) event.userId = uid;
  return event;
}

/** Most items of one event (GA4 keeps 200: https://support.google.com/analytics/answer/9267744). */
export const MAX_ITEMS = 200;
/** Most `~`-separated fields read from one item. */
const MAX_ITEM_FIELDS = 64;

/** The hit's item parameters `pr1`…`pr200`, as [number, text], in item order (merge() left one of each name). */
function itemParams(p: URLSearchParams): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (const [k, v] of p) {
    const m = /^pr([1-9]\d{0,2})$/.exec(k);
    if (m === null) continue;
    const n = Number(m[1]);
    if (n <= MAX_ITEMS && v !== '') out.push([n, v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * gtag.js's item fields by their two-letter keys, onto Segment's product fields
 * (https://segment.com/docs/connections/spec/ecommerce/v2/) or, where Segment has none, the GA4
 * item parameter's name. Keys as read from gtag.js hits by practitioners
 * (https://promincproductions.com/blog/ga4-item-parameter-reference-chart/): an item is
 * `id12345~nmName~brBrand~pr9.99~qt1`, custom parameters as `k0name~v0value` pairs.
 */
const ITEM_FIELDS: Readonly<Record<string, { name: string; number?: true }>> = {
  id: { name: 'product_id' },
  nm: { name: 'name' },
  br: { name: 'brand' },
  ca: { name: 'category' },
  c2: { name: 'item_category2' },
  c3: { name: 'item_category3' },
  c4: { name: 'item_category4' },
  c5: { name: 'item_category5' },
  va: { name: 'variant' },
  pr: { name: 'price', number: true },
  qt: { name: 'quantity', number: true },
  cp: { name: 'coupon' },
  ds: { name: 'discount', number: true },
  lp: { name: 'position', number: true },
  af: { name: 'affiliation' },
  li: { name: 'item_list_id' },
  ln: { name: 'item_list_name' },
  lo: { name: 'location_id' },
};

/** One item's text as a product object; unknown keys are ignored, numbers that are not numbers dropped. */
function productOf(raw: string): Record<string, unknown> {
  const product: Record<string, unknown> = {};
  const custom = new Map<string, { key?: string; value?: string }>();
  for (const field of raw.split('~', MAX_ITEM_FIELDS)) {
    if (field.length < 2) continue;
    const key = field.slice(0, 2);
    const value = field.slice(2);
    const known = ITEM_FIELDS[key];
    if (known !== undefined) {
      if (known.number === true) {
        const n = Number(value);
        if (value.trim() !== '' && Number.isFinite(n)) product[known.name] = n;
      } else if (value !== '') {
        product[known.name] = value;
      }
    } else if (/^[kv]\d$/.test(key)) {
      // Custom item parameters: k<i> names the parameter, v<i> its value (single-digit index:
      // `k10x` could not be told from `k1` + `0x`).
      const slot = custom.get(key[1]!) ?? {};
      if (key[0] === 'k') slot.key = value;
      else slot.value = value;
      custom.set(key[1]!, slot);
    }
  }
  for (const { key, value } of custom.values()) {
    if (key !== undefined && value !== undefined && key !== '' && !FORBIDDEN_KEYS.has(key) && !Object.hasOwn(product, key)) product[key] = value;
  }
  return product;
}

type Page = NonNullable<EventContext['page']>;

function pageOf(p: URLSearchParams): Page | undefined {
  const page: Page = {};
  const dl = text(p.get('dl'), LIMITS.pageText);
  if (dl !== undefined) {
    page.url = dl;
    const url = URL.canParse(dl) ? new URL(dl) : undefined;
    if (url !== undefined) {
      page.path = url.pathname;
      if (url.search !== '') page.search = url.search;
    }
  }
  const dr = text(p.get('dr'), LIMITS.pageText);
  if (dr !== undefined) page.referrer = dr;
  const dt = text(p.get('dt'), LIMITS.pageTitle);
  if (dt !== undefined) page.title = dt;
  return Object.keys(page).length === 0 ? undefined : page;
}

/** Segment's page event carries its page in properties too (https://segment.com/docs/connections/spec/page/#properties). */
function pageProperties(page: Page | undefined): Record<string, unknown> {
  return page === undefined ? {} : { ...page };
}

/**
 * gtag.js resends a batch it could not deliver unchanged, so the same (measurement id, client id,
 * page load id, hit counter, event name, line) is the same hit: its id is derived from them, and the
 * duplicate is dropped downstream. The line number tells apart two identical events of one batch.
 */
function messageId(tid: string, cid: string | undefined, pageLoad: string | null, seq: string | null, en: string, line: number | undefined): string {
  if (cid === undefined || pageLoad === null || pageLoad === '' || seq === null || seq === '') return randomUUID();
  const h = createHash('sha256').update([tid, cid, pageLoad, seq, en, String(line ?? 0)].join('\u0000')).digest('hex');
  return `ga4-${h.slice(0, 32)}`;
}

function text(v: string | null, max: number): string | undefined {
  return v === null || v === '' || v.length > max ? undefined : v;
}
