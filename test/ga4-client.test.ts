import { describe, expect, it } from 'vitest';
import { withTagwarden } from './helpers.ts';

/**
 * The scenario: a GA4 hit with gcs=G100 and one with gcs=G111, for a site whose GA4 and
 * Meta destinations need analytics and advertising consent. Exactly which vendor requests reach
 * the fake vendors, and what they contain.
 */
describe('end to end: GA4 hits (/g/collect) with Consent Mode', () => {
  const ctx = withTagwarden((url) => ({
    site: {
      id: 'shop',
      dataControlMode: 'opt-in',
      categories: { advertising: { gcm: ['ad_storage'] }, analytics: { gcm: ['analytics_storage'] } },
    },
    identity: { visitorId: [{ body: 'anonymousId' }] },
    destinations: [
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, consent: { categories: ['analytics'] }, endpoint: `${url}/ga4/mp/collect` },
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-token' }, consent: { categories: ['advertising'] }, endpoint: `${url}/meta/events` },
    ],
  }));

  const hit = (gcs: string, cid: string) =>
    `v=2&tid=G-TEST123&cid=${cid}&_p=1700000000&_s=1&en=purchase&epn.value=42.5&ep.currency=EUR&ep.transaction_id=t-${cid}&dl=${encodeURIComponent('https://shop.example/thanks')}&gcs=${gcs}`;

  it('G100 sends nothing; G111 sends the purchase to GA4 and Meta', async () => {
    const denied = await fetch(`${ctx.tw.url}/g/collect?${hit('G100', '111.222')}`, { method: 'POST' });
    expect(denied.status).toBe(204);
    const granted = await fetch(`${ctx.tw.url}/g/collect?${hit('G111', '333.444')}`, { method: 'POST' });
    expect(granted.status).toBe(204);
    await ctx.tw.app.flush(5000);

    const ga4 = ctx.vendor.hits.filter((h) => h.path === '/ga4/mp/collect');
    const meta = ctx.vendor.hits.filter((h) => h.path === '/meta/events');
    expect(ga4).toHaveLength(1);
    expect(meta).toHaveLength(1);
    expect(ga4[0]!.body).toMatchObject({ client_id: '333.444', events: [{ name: 'purchase', params: expect.objectContaining({ value: 42.5, currency: 'EUR' }) }] });
    expect(meta[0]!.body).toMatchObject({ data: [expect.objectContaining({ event_name: 'Purchase', event_source_url: 'https://shop.example/thanks' })] });
    expect(JSON.stringify(ctx.vendor.hits)).not.toContain('111.222');
  });

  it('regression: GA4 automatic events (user_engagement, scroll, session_start, first_visit) are not forwarded to Meta', async () => {
    ctx.vendor.hits.length = 0;
    const base = `v=2&tid=G-TEST123&cid=777.888&_p=1700000001&_s=2&dl=${encodeURIComponent('https://shop.example/')}&gcs=G111`;
    const names = ['user_engagement', 'scroll', 'session_start', 'first_visit', 'add_to_cart'];
    const body = names.map((en) => `en=${en}&_et=1200`).join('\n');
    expect((await fetch(`${ctx.tw.url}/g/collect?${base}`, { method: 'POST', body })).status).toBe(204);
    await ctx.tw.app.flush(5000);
    const meta = ctx.vendor.hits.filter((h) => h.path === '/meta/events').flatMap((h) => (h.body as { data: Array<{ event_name: string }> }).data);
    // Only the customer action reaches Meta, as its standard event.
    expect(meta.map((e) => e.event_name)).toEqual(['AddToCart']);
  });

  it("a purchase's items (pr1, pr2) reach GA4 as items and Meta as contents", async () => {
    ctx.vendor.hits.length = 0;
    const items = `&cu=EUR&pr1=${encodeURIComponent('idSKU-1~nmShoe~pr99~qt1')}&pr2=${encodeURIComponent('idSKU-2~nmSocks~pr19.5~qt2')}`;
    expect((await fetch(`${ctx.tw.url}/g/collect?${hit('G111', '555.666')}${items}`, { method: 'POST' })).status).toBe(204);
    await ctx.tw.app.flush(5000);
    const ga4 = ctx.vendor.hits.find((h) => h.path === '/ga4/mp/collect');
    const meta = ctx.vendor.hits.find((h) => h.path === '/meta/events');
    expect(ga4?.body).toMatchObject({
      events: [{ params: { items: [{ item_id: 'SKU-1', item_name: 'Shoe', price: 99, quantity: 1 }, { item_id: 'SKU-2', item_name: 'Socks', price: 19.5, quantity: 2 }] } }],
    });
    expect(meta?.body).toMatchObject({ data: [{ custom_data: { contents: [{ id: 'SKU-1', quantity: 1 }, { id: 'SKU-2', quantity: 2 }] } }] });
  });
});
