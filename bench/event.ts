/**
 * The hit the ingest benchmark sends: a Segment `track` event as analytics.js would POST it to
 * /v1/track (~650 bytes): a purchase with one product, page context, an IP, a user agent, traits
 * with an email, and consent granting advertising and analytics. Every hit has its own messageId;
 * the visitor (anonymousId, userId, email, IP) cycles over `visitors` values, which matters for
 * GA4, whose batches are per client. `{ consent: false }` leaves the consent object out (the
 * visitor's consent must then come from elsewhere, e.g. the upstream verify API: bench/verify.ts).
 */

export interface EventFactory {
  /** The route the hits go to. */
  path: string;
  contentType: string;
  /** The body of hit number `seq`. */
  body(seq: number): string;
}

export type BenchClient = 'segment' | 'ga4' | 'pixel';
export const BENCH_CLIENTS: readonly BenchClient[] = ['segment', 'ga4', 'pixel'];

/**
 * The same purchase as gtag.js posts it to /g/collect (one hit per line, `text/plain`), consent in
 * `gcs=G111`: the visitor (cid) cycles over `visitors` values.
 */
export function ga4Factory(runId: string, visitors: number, eventName = 'purchase'): EventFactory {
  const n = Math.max(1, Math.floor(visitors));
  const dl = encodeURIComponent('https://shop.example.com/checkout/thank-you');
  return {
    path: '/g/collect',
    contentType: 'text/plain;charset=UTF-8',
    body(seq) {
      const v = seq % n;
      return `v=2&tid=G-BENCH&cid=${v + 1000}.${runId.length}1700000000&_p=${seq}&_s=1&sid=1700000000&en=${encodeURIComponent(eventName)}&epn.value=59.9&ep.currency=EUR&ep.transaction_id=order-${seq}&dl=${dl}&dt=Thanks&ul=en-us&gcs=G111`;
    },
  };
}

/** The same purchase as fbevents.js sends it to /tr (form-encoded POST), consent in `gcs=G111`. */
export function pixelFactory(runId: string, visitors: number, eventName = 'Purchase'): EventFactory {
  const n = Math.max(1, Math.floor(visitors));
  const dl = encodeURIComponent('https://shop.example.com/checkout/thank-you');
  return {
    path: '/tr',
    contentType: 'application/x-www-form-urlencoded',
    body(seq) {
      const v = seq % n;
      return `id=1234567890&ev=${encodeURIComponent(eventName)}&eid=bench-${runId}-${seq}&dl=${dl}&fbp=fb.1.1700000000000.${v + 1000}&cd[value]=59.9&cd[currency]=EUR&gcs=G111`;
    },
  };
}

export interface EventFactoryOptions {
  /**
   * `context.consent.categoryPreferences`: true (default) grants advertising and analytics, false
   * leaves the consent object out, an object says each category (bench/soak.ts's visitor mix).
   */
  consent?: boolean | Readonly<Record<string, boolean>>;
  /** The visitor of hit `seq` (default `seq % visitors`): bench/soak.ts gives each kind of visitor its own range. */
  visitor?: (seq: number) => number;
}

/**
 * The event name defaults to `purchase`, a name every template accepts as is (GA4 event names
 * must match `[A-Za-z][A-Za-z0-9_]{0,39}`); `--event "Order Completed"` tries a Segment-style one.
 */
export function eventFactory(runId: string, visitors: number, eventName = 'purchase', at: Date = new Date(), options: EventFactoryOptions = {}): EventFactory {
  const ts = at.toISOString();
  const n = Math.max(1, Math.floor(visitors));
  const prefs = options.consent === undefined || options.consent === true ? { advertising: true, analytics: true } : options.consent;
  const consent = prefs === false ? '' : `,"consent":{"categoryPreferences":${JSON.stringify(prefs)}}`;
  const visitor = options.visitor ?? ((seq: number) => seq % n);
  return {
    path: '/v1/track',
    contentType: 'application/json',
    body(seq) {
      const v = visitor(seq);
      return (
        `{"type":"track","event":${JSON.stringify(eventName)},"messageId":"bench-${runId}-${seq}",` +
        `"anonymousId":"anon-${runId}-${v}","userId":"user-${v}","timestamp":"${ts}",` +
        `"properties":{"order_id":"order-${seq}","value":59.9,"currency":"eur",` +
        `"products":[{"product_id":"sku-1042","name":"Trail shoes","price":59.9,"quantity":1}]},` +
        `"context":{"ip":"203.0.113.${(v % 254) + 1}",` +
        `"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",` +
        `"page":{"url":"https://shop.example.com/checkout/thank-you"},` +
        `"traits":{"email":"Visitor.${v}@Example.com"}${consent}},"integrations":{}}`
      );
    },
  };
}
