import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * DESIGN.md, Delivery: "every retry re-checks consent first (a revocation in the meantime wins)".
 * Meta answers the first request 503 with Retry-After: 1; while the retry waits, one visitor
 * revokes advertising through the consent API, and so does a signed-in user whose event carried a
 * userId and no visitor id. Those events are dropped before the retry; the other visitor's is
 * retried and delivered.
 */
forEachEngine('a revocation between two delivery attempts wins', (engine) => {
  let db: Db;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let key: string;

  beforeAll(async () => {
    db = await engine.open();
    let first = true;
    vendor = await startVendor(() => {
      if (first) {
        first = false;
        return { status: 503, headers: { 'retry-after': '1' }, body: '{}' };
      }
      return { status: 200, body: '{"events_received":1}' };
    });
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {} } },
        delivery: { baseDelayMs: 10, maxDelayMs: 50 },
        destinations: [
          { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'tok' }, consent: { categories: ['advertising'] }, endpoint: `${vendor.url}/meta` },
        ],
      }),
      undefined,
      { db },
    );
    key = (await createApiKey(db, { label: 'w', scopes: ['consent:write'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  it('drops the revoked visitor’s event before the retry and delivers the other', async () => {
    const context = { consent: { categoryPreferences: { advertising: true } }, userAgent: 'Mozilla/5.0 (test)', page: { url: 'https://shop.example/thanks' } };
    // One batch (Meta batches everyone together) holding both visitors' events.
    await post(`${tw.url}/v1/track`, { anonymousId: 'v-revokes', messageId: 'm-revoked', event: 'Purchase', context });
    await post(`${tw.url}/v1/track`, { anonymousId: 'v-keeps', messageId: 'm-kept', event: 'Purchase', context });
    await post(`${tw.url}/v1/track`, { userId: 'u-revokes', messageId: 'm-user-revoked', event: 'Purchase', context });
    const until = Date.now() + 5_000;
    while (vendor.hits.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(vendor.hits).toHaveLength(1);
    expect(JSON.stringify(vendor.hits[0]!.body)).toContain('m-revoked');

    const r = await fetch(`${tw.url}/api/v1/consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ visitorId: 'v-revokes', categories: { advertising: false } }),
    });
    expect(r.status).toBe(200);
    const u = await fetch(`${tw.url}/api/v1/consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ userId: 'u-revokes', categories: { advertising: false } }),
    });
    expect(u.status).toBe(200);

    await tw.app.flush(5_000);
    expect(vendor.hits).toHaveLength(2);
    const retried = JSON.stringify(vendor.hits[1]!.body);
    expect(retried).toContain('m-kept');
    expect(retried).not.toContain('m-revoked');
    expect(retried).not.toContain('m-user-revoked');
    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    // Counted per event: the visitor's and the user's.
    expect(metrics).toMatch(/tagwarden_deliveries_total\{destination="meta",outcome="dropped"\} 2/);
  });
});
