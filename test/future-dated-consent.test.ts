import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/db.ts';
import { createConsentStore } from '../src/store/consent.ts';
import { forEachEngine } from './engines.ts';
import { post, sha256, startTagwarden, startVendor, testConfig, withTagwarden } from './helpers.ts';

/**
 * Issue 13, "a client clock never outranks a denial": a hit's own `timestamp` used to decide which
 * consent signal was the most recent, so a Segment grant dated 2099 beat the same hit's Consent
 * Mode and TCF denials, and a grant stored with a 2099 time (before timestamps were bounded) beat a
 * denial carried by any later hit. Every signal's time is now bounded by the hit's arrival before
 * any precedence (src/consent/merge.ts).
 */
const adminKey = 'future-dated-admin-key-0123456789';
const auth = { authorization: `Bearer ${adminKey}` };
const site = {
  id: 'shop',
  dataControlMode: 'opt-in',
  categories: {
    advertising: { saleOrShare: true, gcm: ['ad_storage', 'ad_user_data'], tcf: { purposes: [1, 3, 4] } },
    analytics: { gcm: ['analytics_storage'], tcf: { purposes: [1, 8, 9] } },
  },
};
const byId = (destinations: any[]) => Object.fromEntries(destinations.map((d) => [d.id, d]));

describe('the issue\'s explain request: a future-dated hit', () => {
  const ctx = withTagwarden((vendorUrl) => ({
    site,
    destinations: [
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendorUrl}/meta` },
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, endpoint: `${vendorUrl}/ga4` },
    ],
    debug: { explain: true, adminKey },
  }));
  const path = '/debug/explain?gcs=G100&gcd=13p3p3p2p5&gdpr=1&gdpr_consent=garbage';
  const event = (timestamp?: string) => ({
    type: 'track',
    event: 'Purchase',
    anonymousId: 'visitor-2099',
    ...(timestamp === undefined ? {} : { timestamp }),
    context: { consent: { categoryPreferences: { advertising: true, analytics: true } } },
    properties: { value: 10, currency: 'EUR' },
  });

  it('a granting categoryPreferences dated 2099 is denied, as it is without the timestamp, and the clock is shown as bounded', async () => {
    const future = await post(`${ctx.tw.url}${path}`, event('2099-01-01T00:00:00Z'), auth);
    const plain = await post(`${ctx.tw.url}${path}`, event(), auth);
    expect(future.status).toBe(200);
    expect(plain.status).toBe(200);
    for (const r of [future, plain]) {
      expect(r.body.consent.categories.advertising.status).toBe('denied');
      expect(r.body.consent.categories.analytics.status).toBe('denied');
      for (const d of r.body.destinations) expect(d.decision).toBe('drop');
      expect(byId(r.body.destinations).ga4.request).toBeUndefined();
    }
    // The time the decision counted is the hit's arrival, never 2099.
    expect(future.body.consent.categories.analytics.at).toBeLessThanOrEqual(Date.parse(future.body.event.receivedAt));
    expect(future.body.consent.bounded).toEqual([
      expect.objectContaining({ source: 'segment', categories: ['advertising', 'analytics'], at: '2099-01-01T00:00:00.000Z', boundedTo: future.body.event.receivedAt }),
    ]);
    expect(plain.body.consent.bounded).toBeUndefined();
    await ctx.tw.app.flush(1000);
    expect(ctx.vendor.hits).toEqual([]);
  });
});

forEachEngine('a grant stored with a 2099 time', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;

  beforeAll(async () => {
    db = await engine.open();
    // Written straight to the store, as a push could before consent times were bounded.
    await createConsentStore(db).apply([
      { siteId: 'shop', subject: { type: 'visitor', id: 'v-2099' }, action: 'accept', item: 'analytics', consentAt: Date.parse('2099-01-01T00:00:00Z'), validUntil: null, source: 'private_api', valid: true, payloadHash: sha256('v-2099') },
    ]);
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site,
        destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } }],
        debug: { explain: true, adminKey },
      }),
      undefined,
      { db },
    );
  });

  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  const track = (messageId: string, extra: Record<string, unknown> = {}) =>
    fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'x', anonymousId: 'v-2099', ...extra }) });
  const sent = () => vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));

  it('still decides a hit that says nothing, but never overrides a denial the hit carries, even one dated before the hit', async () => {
    // A hit without signals: the stored grant is all there is (as of the hit's arrival).
    expect((await track('silent')).status).toBe(200);
    await tw.app.flush(5000);
    expect(sent()).toContain('silent');

    // The same visitor denies, on an event dated a minute before it reached us.
    const denial = { timestamp: new Date(Date.now() - 60_000).toISOString(), context: { consent: { categoryPreferences: { analytics: false } } } };
    const explained = await post(`${tw.url}/debug/explain`, { type: 'track', event: 'x', anonymousId: 'v-2099', ...denial }, auth);
    expect(explained.status).toBe(200);
    expect(explained.body.consent.categories.analytics).toMatchObject({ status: 'denied', source: 'segment' });
    expect(explained.body.consent.bounded).toEqual([expect.objectContaining({ source: 'store', categories: ['analytics'], at: '2099-01-01T00:00:00.000Z' })]);
    expect(byId(explained.body.destinations).stats).toMatchObject({ decision: 'drop', reasons: ['consent_denied:analytics'] });

    expect((await track('denied', denial)).status).toBe(200);
    await tw.app.flush(5000);
    expect(sent()).not.toContain('denied');
  });
});
