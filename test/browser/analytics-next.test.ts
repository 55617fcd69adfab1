import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadJsonFixtures } from '../fixtures/load.ts';
import { sha256, startTagwarden, startVendor, testConfig, type VendorHit } from '../helpers.ts';
import { chromiumMissing, launchLocalOnly, localContext } from './chromium.ts';
import { startRecorder, type Exchange } from './recorder.ts';
import { shapeOf } from './shape.ts';
import { startStaticServer } from './static-server.ts';

/**
 * Real clients nobody here wrote, unchanged: Debian's Chromium runs the official
 * @segment/analytics-next UMD build (and @segment/analytics-consent-tools) from a local static
 * server, pointed at Tagwarden through `apiHost`, and sends Meta pixel beacons the way fbevents.js
 * does. Every scenario asserts exactly which events each fake-vendor destination received.
 * Nothing may leave 127.0.0.1: Segment's CDN settings are inline, and any other origin is blocked.
 */
const missing = chromiumMissing();
if (missing !== undefined) console.warn(missing);

/** Payloads captured once from this library version (see the folder's README). */
const fixtures = new Map(loadJsonFixtures<unknown>('segment/analytics-next'));
const fixture = (name: string): unknown => fixtures.get(name);

interface SentEvent {
  type: string;
  event?: string;
  messageId: string;
  userId?: unknown;
  context?: { consent?: { categoryPreferences?: Record<string, boolean> } };
}

describe.skipIf(missing !== undefined)('real clients in Chromium: analytics-next, consent-tools and pixel beacons through Tagwarden', () => {
  let chromium: Awaited<ReturnType<typeof launchLocalOnly>>;
  let site: Awaited<ReturnType<typeof startStaticServer>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let rec: Awaited<ReturnType<typeof startRecorder>>;
  const escaped: string[] = [];
  const pageErrors: string[] = [];
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: {
          id: 'shop',
          dataControlMode: 'opt-in',
          categories: { analytics: { gcm: ['analytics_storage'] }, advertising: { gcm: ['ad_storage'] } },
        },
        destinations: [
          // Not gated by category: receives every event.
          { id: 'everything', template: 'webhook', settings: { url: `${vendor.url}/everything` } },
          { id: 'analytics', template: 'webhook', settings: { url: `${vendor.url}/analytics` }, consent: { categories: ['analytics'] } },
          { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-token' }, endpoint: `${vendor.url}/meta`, consent: { categories: ['advertising'] } },
        ],
      }),
    );
    rec = await startRecorder(tw.url);
    site = await startStaticServer();
    chromium = await launchLocalOnly();
  });

  afterAll(async () => {
    await chromium?.close();
    await site?.close();
    await rec?.close();
    await tw?.close();
    await vendor?.close();
  });

  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close();
    // Nothing may have tried to reach beyond 127.0.0.1, and the libraries ran without errors.
    expect(escaped).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  /** A new visitor on the test page; what Tagwarden and the vendor get from here on is this scenario's. */
  async function visit(): Promise<{
    page: Page;
    sent: () => SentEvent[];
    exchanges: () => Exchange[];
    preflights: () => Exchange[];
    received: (dest: string) => Record<string, any>[];
    delivered: (dest: string) => string[];
  }> {
    const context = await localContext(chromium.browser, escaped);
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const fromExchange = rec.exchanges.length;
    const fromHit = vendor.hits.length;
    await page.goto(`${site.url}/`);
    await page.waitForFunction(() => (globalThis as any).harness !== undefined);
    const exchanges = (): Exchange[] => rec.exchanges.slice(fromExchange).filter((e) => e.method === 'POST');
    return {
      page,
      exchanges,
      preflights: () => rec.exchanges.slice(fromExchange).filter((e) => e.method === 'OPTIONS'),
      sent: () => exchanges().filter((e) => e.path.startsWith('/v1/')).flatMap((e) => segmentEvents(e)),
      received: (dest) => eventsReceived(vendor.hits.slice(fromHit), dest),
      delivered: (dest) => idsDelivered(vendor.hits.slice(fromHit), dest),
    };
  }

  async function load(page: Page, opts: { writeKey: string; batching?: { size: number; timeout: number }; wrapper?: { categories: Record<string, boolean> } }): Promise<void> {
    const version = await page.evaluate((o) => (globalThis as any).harness.load(o), { ...opts, apiHost: `${new URL(rec.url).host}/v1` });
    expect(version).toBe('1.84.3');
  }

  const call = (page: Page, method: string, ...args: unknown[]): Promise<string> => page.evaluate(([m, a]) => (globalThis as any).harness.call(m, a), [method, args] as const);

  async function settled(what: string, visitor: { sent: () => SentEvent[] }, count: number): Promise<void> {
    await rec.waitFor(what, () => visitor.sent().length >= count);
    await tw.app.flush(5000);
  }

  const consent = (categoryPreferences: Record<string, boolean>) => ({ consent: { categoryPreferences } });
  const ids = (events: SentEvent[]) => events.map((e) => e.messageId).sort();

  it('an anonymous visitor without a consent object: track, page, identify reach the ungated destination only (opt-in)', async () => {
    const v = await visit();
    await load(v.page, { writeKey: 'wk-anonymous' });
    await call(v.page, 'track', 'Product Viewed', { sku: 'A-1', price: 12.5, currency: 'EUR' });
    await call(v.page, 'page');
    await call(v.page, 'identify', { plan: 'free' });
    await settled('track, page and identify', v, 3);

    const sent = v.sent();
    expect(sent.map((e) => e.type)).toEqual(['track', 'page', 'identify']);
    // What the library really sends for an anonymous visitor: userId null on every event. The
    // structure is the captured one (test/fixtures/segment/analytics-next/README.md).
    expect(sent.map((e) => e.userId)).toEqual([null, null, null]);
    expect(sent.map((e) => shapeOf(e))).toEqual(['track-anonymous.json', 'page-anonymous.json', 'identify-anonymous.json'].map((f) => shapeOf(fixture(f))));

    // The library's Authorization header makes every post a preflighted CORS request.
    for (const p of v.preflights()) {
      expect(p.status).toBe(204);
      expect(p.answerHeaders['access-control-allow-origin']).toBe(site.url);
      expect(String(p.answerHeaders['access-control-allow-headers'])).toMatch(/authorization/i);
    }
    expect(v.preflights().length).toBeGreaterThan(0);
    expect(v.exchanges().map((e) => [e.path, e.status, e.answer])).toEqual([
      ['/v1/t', 200, '{"success":true}'],
      ['/v1/p', 200, '{"success":true}'],
      ['/v1/i', 200, '{"success":true}'],
    ]);
    expect(v.delivered('everything')).toEqual(ids(sent));
    expect(v.delivered('analytics')).toEqual([]);
    expect(v.delivered('meta')).toEqual([]);
    // null means absent: the destination gets no userId at all.
    expect(v.received('everything').filter((e) => 'userId' in e)).toEqual([]);
  });

  it('with a consent object in context.consent.categoryPreferences, the analytics destination gets what was granted', async () => {
    const v = await visit();
    await load(v.page, { writeKey: 'wk-consent' });
    const granted = consent({ analytics: true, advertising: false });
    await call(v.page, 'track', 'Product Viewed', { sku: 'A-2' }, granted);
    await call(v.page, 'page', {}, granted);
    await call(v.page, 'identify', { plan: 'pro' }, granted);
    await call(v.page, 'track', 'Checkout Started', {}, consent({ analytics: false, advertising: false }));
    await settled('four events', v, 4);

    const sent = v.sent();
    expect(sent.map((e) => e.context?.consent?.categoryPreferences)).toEqual([
      { analytics: true, advertising: false },
      { analytics: true, advertising: false },
      { analytics: true, advertising: false },
      { analytics: false, advertising: false },
    ]);
    expect(v.exchanges().map((e) => e.status)).toEqual([200, 200, 200, 200]);
    expect(v.delivered('everything')).toEqual(ids(sent));
    expect(v.delivered('analytics')).toEqual(ids(sent.slice(0, 3)));
    expect(v.delivered('meta')).toEqual([]);
  });

  it('the batching delivery strategy posts to /v1/b: a full batch at once, the rest at the timeout', async () => {
    const v = await visit();
    await load(v.page, { writeKey: 'wk-batch', batching: { size: 3, timeout: 300 } });
    const granted = consent({ analytics: true });
    await call(v.page, 'track', 'Batch One', {}, granted);
    await call(v.page, 'track', 'Batch Two');
    await call(v.page, 'page', {}, granted);
    await call(v.page, 'track', 'Batch Four', {}, granted);
    await settled('two batches', v, 4);

    const batches = v.exchanges();
    // The items of a batch carry no sentAt; the envelope does (the captured batch.json).
    expect(shapeOf(JSON.parse(batches[0]!.body.toString('utf8')))).toEqual(shapeOf(fixture('batch.json')));
    // Every item accepted: the plain success answer (a partial batch would list what it refused).
    expect(batches.map((e) => [e.path, e.status, e.answer])).toEqual([
      ['/v1/b', 200, '{"success":true}'],
      ['/v1/b', 200, '{"success":true}'],
    ]);
    const sent = v.sent();
    expect(sent.map((e) => e.event ?? e.type)).toEqual(['Batch One', 'Batch Two', 'page', 'Batch Four']);
    expect(v.delivered('everything')).toEqual(ids(sent));
    expect(v.delivered('analytics')).toEqual(ids([sent[0]!, sent[2]!, sent[3]!]));
    expect(v.delivered('meta')).toEqual([]);
  });

  it('the analytics-consent-tools wrapper: denied before the grant, forwarded after it, denied again after the revocation', async () => {
    const v = await visit();
    await load(v.page, { writeKey: 'wk-wrapper', wrapper: { categories: { analytics: false, advertising: false } } });
    // The wrapper sends its own event on every change; it is awaited before the next call, so
    // the order of arrival is the order of the calls.
    const changed = async (n: number, categories: Record<string, boolean>): Promise<void> => {
      await v.page.evaluate((c) => (globalThis as any).harness.consent(c), categories);
      await rec.waitFor(`consent change ${n}`, () => v.sent().filter((e) => e.event === 'Segment Consent Preference Updated').length >= n);
    };
    await call(v.page, 'track', 'Before Grant');
    await changed(1, { analytics: true, advertising: false });
    await call(v.page, 'track', 'After Grant');
    await changed(2, { analytics: false, advertising: false });
    await call(v.page, 'track', 'After Revocation');
    await settled('three events and two consent changes', v, 5);

    const sent = v.sent();
    // The wrapper stamps every event with the CMP's categories at the time it is sent, and tells
    // Segment of every change with its own event (consent-tools src/domain/analytics/analytics-service.ts).
    expect(sent.map((e) => [e.event, e.context?.consent?.categoryPreferences?.analytics])).toEqual([
      ['Before Grant', false],
      ['Segment Consent Preference Updated', true],
      ['After Grant', true],
      ['Segment Consent Preference Updated', false],
      ['After Revocation', false],
    ]);
    expect(v.delivered('everything')).toEqual(ids(sent));
    expect(v.delivered('analytics')).toEqual(ids([sent[1]!, sent[2]!]));
    expect(v.delivered('meta')).toEqual([]);
  });

  it('Meta pixel beacons, multipart FormData and urlencoded, reach the destinations their consent allows with their data', async () => {
    const v = await visit();
    const em = sha256('jane.doe@example.com');
    const hit = (eid: string, extra: Record<string, string> = {}) => ({
      id: '1234567890',
      ev: 'Purchase',
      eid,
      dl: `${site.url}/thanks`,
      'cd[value]': '42.5',
      'cd[currency]': 'EUR',
      'ud[em]': em,
      ...extra,
    });
    // Each beacon is awaited at Tagwarden's door before the next is sent: beacons are not ordered.
    let beacons = 0;
    const beacon = async (fields: Record<string, string>, encoding: 'multipart' | 'urlencoded'): Promise<void> => {
      const queued = await v.page.evaluate(([url, f, enc]) => (globalThis as any).harness.beacon(url, f, enc), [`${rec.url}/tr`, fields, encoding] as const);
      expect(queued).toBe(true);
      const n = ++beacons;
      await rec.waitFor(`beacon ${n}`, () => v.exchanges().filter((e) => e.path === '/tr').length >= n);
    };

    // gcs=G110: ad_storage granted, analytics_storage denied (Google Consent Mode, read from the hit).
    await beacon(hit('px-multipart-no-consent'), 'multipart');
    await beacon(hit('px-multipart', { gcs: 'G110' }), 'multipart');
    await beacon(hit('px-urlencoded', { gcs: 'G110' }), 'urlencoded');
    await tw.app.flush(5000);

    expect(v.exchanges().map((e) => [e.path, String(e.headers['content-type']).split(';')[0], e.status])).toEqual([
      ['/tr', 'multipart/form-data', 204],
      ['/tr', 'multipart/form-data', 204],
      ['/tr', 'application/x-www-form-urlencoded', 204],
    ]);
    expect(v.delivered('everything')).toEqual(['px-multipart', 'px-multipart-no-consent', 'px-urlencoded']);
    expect(v.delivered('analytics')).toEqual([]);
    expect(v.delivered('meta')).toEqual(['px-multipart', 'px-urlencoded']);
    for (const e of v.received('everything')) {
      expect(e).toMatchObject({ type: 'track', event: 'Purchase', properties: { value: 42.5, currency: 'EUR' }, context: { page: { url: `${site.url}/thanks` } } });
      // Meta's hashes are Meta's: not traits of the event other destinations receive.
      expect(JSON.stringify(e.traits ?? {})).not.toContain(em);
    }
    // fbevents.js hashed the email already: it reaches Meta's user_data as sent, never re-hashed.
    for (const e of v.received('meta')) {
      expect(e).toMatchObject({ event_name: 'Purchase', user_data: { em }, custom_data: { value: 42.5, currency: 'EUR' } });
    }
  });
});

/** The Segment events of one request: a batch's items, or the single event. */
function segmentEvents(e: Exchange): SentEvent[] {
  const body = JSON.parse(e.body.toString('utf8')) as SentEvent & { batch?: SentEvent[] };
  return e.path === '/v1/b' ? (body.batch ?? []) : [body];
}

/** What a destination received: the webhook's batch items, Meta's `data` items. */
function eventsReceived(hits: readonly VendorHit[], dest: string): Record<string, any>[] {
  const into = dest === 'meta' ? 'data' : 'batch';
  return hits.filter((h) => h.path === `/${dest}`).flatMap((h) => (h.body as Record<string, Record<string, any>[]>)[into] ?? []);
}

/** The message ids a destination received, sorted: the webhook's `messageId`, Meta's `event_id`. */
function idsDelivered(hits: readonly VendorHit[], dest: string): string[] {
  return eventsReceived(hits, dest)
    .map((e) => String(dest === 'meta' ? e.event_id : e.messageId))
    .sort();
}
