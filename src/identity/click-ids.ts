import type { Event } from '../ingest/event.ts';

/**
 * Ad click ids from the landing page URL, kept on the event for destinations that attribute
 * conversions: `gclid`, `gbraid` and `wbraid` (Google Ads: https://developers.google.com/google-ads/api/reference/rpc/v26/ClickConversion), `fbclid` (Meta; also turned into the `fbc` value the
 * Conversions API expects when the hit carries none:
 * https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc/ ,
 * `fb.1.<creation time in ms>.<fbclid>`), and `ttclid` (TikTok). Bounded: ids longer than 512
 * characters or with control characters are ignored.
 */
export interface ClickIds {
  gclid?: string;
  /** Google Ads click ids of iOS app (gbraid) and web (wbraid) clicks, sent instead of a gclid. */
  gbraid?: string;
  wbraid?: string;
  fbclid?: string;
  ttclid?: string;
  fbc?: string;
}

const MAX_ID = 512;
const SAFE = /^[\x21-\x7e]+$/;

export function clickIdsFrom(url: string | undefined, now: Date): ClickIds | undefined {
  if (url === undefined || url.length > 8192 || (!url.includes('clid=') && !url.includes('braid='))) return undefined;
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return undefined;
  }
  const out: ClickIds = {};
  for (const key of ['gclid', 'gbraid', 'wbraid', 'fbclid', 'ttclid'] as const) {
    const v = params.get(key);
    if (v !== null && v.length > 0 && v.length <= MAX_ID && SAFE.test(v)) out[key] = v;
  }
  if (out.fbclid !== undefined) out.fbc = `fb.1.${now.getTime()}.${out.fbclid}`;
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * Adds `context.clickIds` from `context.page.url`. The Meta template reads `fbc` from the hit's own
 * value first (`context.fbc`, the pixel's `context.meta.fbc`), then from here.
 */
export function withClickIds(event: Event, now: Date): Event {
  const ids = clickIdsFrom(event.context.page?.url, now);
  if (ids === undefined) return event;
  return { ...event, context: { ...event.context, clickIds: ids } };
}
