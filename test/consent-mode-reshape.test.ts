import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';

/**
 * Issue 14, "Reshape, as tables", end to end: a hit whose Google Consent Mode (gcd) grants
 * ad_storage but denies ad_user_data reaches Meta with its hashed user data stripped (the template's
 * `ad_user_data:denied` rule) instead of being dropped or sent whole; ad_personalization denied
 * sends Meta's `opt_out`. The site gates advertising by ad_storage only, as Google describes the
 * two signals: ad_user_data governs sending user data, not sending the conversion
 * (https://developers.google.com/tag-platform/security/concepts/consent-mode).
 * gcd letters: r = denied by default, granted by an update; q = denied, denied again.
 */
interface MetaEvent {
  event_id: string;
  data_processing_options?: string[];
  user_data: Record<string, unknown>;
  opt_out?: boolean;
}

describe('Consent Mode reshapes a Meta event (ad_user_data, ad_personalization)', () => {
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;

  beforeAll(async () => {
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { saleOrShare: true, gcm: ['ad_storage'] } } },
        destinations: [
          { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendor.url}/meta/events`, consent: { categories: ['advertising'] } },
          // The same pixel, asking Meta's Limited Data Use for a GPC opt-out instead of dropping.
          { id: 'meta-ldu', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendor.url}/meta-ldu/events`, consent: { categories: ['advertising'], whenGpc: 'limitedDataUse' } },
        ],
      }),
    );
  });

  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  async function send(id: string, gcd: string, headers?: Record<string, string>, path = '/meta/events'): Promise<MetaEvent | undefined> {
    const body = { type: 'track', event: 'Order Completed', messageId: id, anonymousId: `v-${id}`, timestamp: new Date().toISOString(), properties: { value: 10, currency: 'EUR' }, context: { userAgent: 'Mozilla/5.0 (test)', ip: '203.0.113.7', page: { url: 'https://shop.example/thanks' }, traits: { email: 'jane@example.com' } } };
    expect((await post(`${tw.url}/v1/track?gcd=${gcd}`, body, headers)).status).toBe(200);
    await tw.app.flush(5_000);
    const events = vendor.hits.filter((h: VendorHit) => h.path === path).flatMap((h: VendorHit) => (h.body as { data: MetaEvent[] }).data);
    return events.find((e) => e.event_id === id);
  }

  it('everything granted: sent whole, hashed email included', async () => {
    const e = await send('all-granted', '13r3r3r2r5');
    expect(e?.user_data.em).toBeDefined();
    expect(e?.opt_out).toBeUndefined();
  });

  it('ad_user_data denied: sent, without the hashed user data', async () => {
    const e = await send('aud-denied', '13r3r3q2r5');
    expect(e).toBeDefined();
    expect(e?.user_data.em).toBeUndefined();
  });

  it('ad_personalization denied: sent with opt_out', async () => {
    const e = await send('ap-denied', '13r3r3r2q5');
    expect(e?.user_data.em).toBeDefined();
    expect(e?.opt_out).toBe(true);
  });

  it('Sec-GPC: 1 drops by default; a destination with whenGpc: limitedDataUse gets it with Meta LDU', async () => {
    const gpc = { 'sec-gpc': '1' };
    expect(await send('gpc-default', '13r3r3r2r5', gpc)).toBeUndefined();
    const e = await send('gpc-ldu', '13r3r3r2r5', gpc, '/meta-ldu/events');
    expect(e?.data_processing_options).toEqual(['LDU']);
  });

  it('ad_storage denied: the category is denied, nothing is sent', async () => {
    expect(await send('storage-denied', '13q3r3r2r5')).toBeUndefined();
  });
});
