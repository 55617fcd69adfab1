import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { listDead } from '../src/store/journal.ts';
import { openDb } from '../src/store/open.ts';
import { post, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';

/**
 * Issue 14, "Deduplication" and the "denied" row of the reshape matrices. Meta deduplicates a
 * server event against the browser pixel's (and against itself) by `event_id` + `event_name`
 * (https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events),
 * so a batch that is resent after a failure must carry the very ids of the first attempt, which
 * are the events' messageIds (templates/meta-capi/cases/event-id-dedup.json). A fake Meta on
 * 127.0.0.1 answers the first request 503 (no Retry-After: meta-capi has an idempotency key, so a
 * bare 5xx is retried) and the second 200; a dead letter replayed later carries the same ids.
 */

interface MetaBody {
  data: { event_id: string; event_name: string }[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const context = { userAgent: 'Mozilla/5.0 (test)', ip: '203.0.113.7', page: { url: 'https://shop.example/thanks' }, traits: { email: 'jane@example.com' } };

function ids(hit: VendorHit): string[] {
  return (hit.body as MetaBody).data.map((e) => `${e.event_name}:${e.event_id}`).sort();
}

describe('meta-capi deduplication across retries', () => {
  it('a batch answered 503 then 200 is resent with the same event_id for every event, each the messageId', async () => {
    let calls = 0;
    const vendor = await startVendor(() => (++calls === 1 ? { status: 503, body: '{"error":{"message":"Service temporarily unavailable","code":2}}' } : { status: 200, body: '{"events_received":3}' }));
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: { advertising: {} } },
        delivery: { baseDelayMs: 10, maxDelayMs: 50 },
        destinations: [{ id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendor.url}/meta/events` }],
      }),
    );
    cleanups.push(() => vendor.close(), () => tw.close());

    const batch = [
      { type: 'track', event: 'Order Completed', messageId: 'evt-order-1', anonymousId: 'v1', properties: { order_id: 'o-1', value: 10, currency: 'EUR' }, context },
      { type: 'track', event: 'Lead', messageId: 'evt-lead-2', anonymousId: 'v2', context },
      { type: 'page', name: 'Thanks', messageId: 'evt-page-3', anonymousId: 'v3', context },
    ];
    expect((await post(`${tw.url}/v1/batch`, { batch })).status).toBe(200);
    await tw.app.flush(5_000);

    expect(vendor.hits).toHaveLength(2);
    const [first, retry] = vendor.hits as [VendorHit, VendorHit];
    expect(ids(first)).toEqual(['Lead:evt-lead-2', 'PageView:evt-page-3', 'Purchase:evt-order-1']);
    expect(ids(retry)).toEqual(ids(first));
    // The whole request is the same, not only the ids: Meta sees one event three times at most as a repeat.
    expect(retry.body).toEqual(first.body);
  });
});

describe('meta-capi deduplication across a replay', () => {
  it('a dead letter (Meta refused the token) replayed through the API is sent with the event_id of the first attempt', async () => {
    const db = await openDb('sqlite::memory:');
    let accepting = false;
    const vendor = await startVendor(() =>
      accepting ? { status: 200, body: '{"events_received":1}' } : { status: 400, body: '{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}' },
    );
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: { advertising: {} } },
        destinations: [{ id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendor.url}/meta/events` }],
      }),
      undefined,
      { db },
    );
    cleanups.push(() => db.close(), () => vendor.close(), () => tw.close());
    const key = (await createApiKey(db, { label: 'ops', scopes: ['admin'] })).key;

    expect((await post(`${tw.url}/v1/track`, { event: 'Order Completed', messageId: 'evt-replayed', anonymousId: 'v1', context })).status).toBe(200);
    const deadline = Date.now() + 10_000;
    while ((await listDead(db, { siteId: 'shop' })).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(vendor.hits).toHaveLength(1);

    accepting = true;
    expect(await post(`${tw.url}/api/v1/deliveries/dead/replay`, { destinationId: 'meta' }, { 'x-api-key': key })).toEqual({ status: 200, body: { replayed: 1 } });
    while (vendor.hits.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    expect(vendor.hits).toHaveLength(2);
    expect(ids(vendor.hits[0]!)).toEqual(['Purchase:evt-replayed']);
    expect(ids(vendor.hits[1]!)).toEqual(ids(vendor.hits[0]!));
  });
});

describe('reshape matrix, row "denied": nothing is sent', () => {
  it('opt-in with the required category denied: no request reaches Meta or GA4 (the webhook still gets the event); the same event with consent unknown goes out reshaped', async () => {
    const vendor = await startVendor();
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } },
        destinations: [
          { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, consent: { whenUnknown: 'redact' }, endpoint: `${vendor.url}/meta/events` },
          { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, consent: { whenUnknown: 'redact' }, endpoint: `${vendor.url}/ga4/mp/collect` },
          { id: 'crm', template: 'webhook', settings: { url: `${vendor.url}/crm` } },
        ],
      }),
    );
    cleanups.push(() => vendor.close(), () => tw.close());

    const denied = { ...context, consent: { categoryPreferences: { advertising: false, analytics: false } } };
    expect((await post(`${tw.url}/v1/track`, { event: 'Order Completed', messageId: 'evt-denied', anonymousId: '111.222', userId: 'u-1', context: denied })).status).toBe(200);
    // The control: the same event with consent unknown is sent, reshaped (row "consent unknown").
    expect((await post(`${tw.url}/v1/track`, { event: 'Order Completed', messageId: 'evt-unknown', anonymousId: '333.444', userId: 'u-2', context })).status).toBe(200);
    await tw.app.flush(5_000);

    const meta = vendor.hits.filter((h) => h.path.startsWith('/meta')).flatMap((h) => (h.body as { data: Record<string, unknown>[] }).data);
    expect(meta.map((e) => e.event_id)).toEqual(['evt-unknown']);
    expect(meta[0]!.user_data).toEqual({ client_user_agent: 'Mozilla/5.0 (test)' });
    const ga4 = vendor.hits.filter((h) => h.path.startsWith('/ga4')).map((h) => h.body as Record<string, unknown>);
    expect(ga4).toHaveLength(1);
    expect(ga4[0]).toMatchObject({ client_id: '333.444', consent: { ad_user_data: 'DENIED', ad_personalization: 'DENIED' } });
    expect(ga4[0]).not.toHaveProperty('user_id');
    expect(vendor.hits.filter((h) => h.path.startsWith('/crm')).flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId)).sort()).toEqual(['evt-denied', 'evt-unknown']);
  });
});
