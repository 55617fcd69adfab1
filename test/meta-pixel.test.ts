import { describe, expect, it } from 'vitest';
import { sha256, withTagwarden } from './helpers.ts';

/** The Meta pixel pointed at the tagging domain: /tr hits reach destinations through the same path as Segment events. */
describe('end to end: Meta pixel hits', () => {
  const ctx = withTagwarden((url) => ({
    site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { gcm: ['ad_storage'] } } },
    destinations: [{ id: 'ads', template: 'webhook', settings: { url: `${url}/ads` }, consent: { categories: ['advertising'] } }],
  }));

  const delivered = () => ctx.vendor.hits.flatMap((h) => (h.body as { batch: Record<string, any>[] }).batch);

  it('an image hit answers a 1×1 GIF, and without consent nothing is sent (opt-in)', async () => {
    const r = await fetch(`${ctx.tw.url}/tr?id=1234567890&ev=Purchase&eid=evt-no-consent&cd[value]=10&cd[currency]=EUR`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/image\/gif/);
    expect((await r.arrayBuffer()).byteLength).toBe(43);
    await ctx.tw.app.flush(5000);
    expect(delivered().map((e) => e.messageId)).not.toContain('evt-no-consent');
  });

  it('with consent in the hit (gcs), the purchase reaches the destination as a canonical event', async () => {
    const r = await fetch(`${ctx.tw.url}/tr?id=1234567890&ev=Purchase&eid=evt-1&cd[value]=42.5&cd[currency]=EUR&fbp=fb.1.1700000000000.123456&dl=${encodeURIComponent('https://shop.example/thanks')}&gcs=G111`);
    expect(r.status).toBe(200);
    await ctx.tw.app.flush(5000);
    const e = delivered().find((x) => x.messageId === 'evt-1');
    expect(e).toMatchObject({ type: 'track', event: 'Purchase', properties: { value: 42.5, currency: 'EUR' }, context: { page: { url: 'https://shop.example/thanks' }, meta: { pixelId: '1234567890', fbp: 'fb.1.1700000000000.123456' } } });
  });
});

/**
 * The pixel's data reaches Meta: the same Purchase hit as an image GET, a form POST and a
 * sendBeacon(FormData) multipart POST gives the Conversions API the browser's ud[*] digests as
 * user_data (unchanged, never hashed again) and every cd[*] field as custom_data; GA4 and a webhook
 * get the items but never Meta's hashes as traits.
 */
describe('regression: pixel ud[*] hashes and cd[*] fields reach Meta (they were parsed, then no template read them)', () => {
  const ctx = withTagwarden((url) => ({
    site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { gcm: ['ad_storage'] }, analytics: { gcm: ['analytics_storage'] } } },
    destinations: [
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890123456', accessToken: 'EAAB-test' }, endpoint: `${url}/meta/events`, consent: { categories: ['advertising'] } },
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST1234', apiSecret: 'secret' }, endpoint: `${url}/mp/collect`, consent: { categories: ['analytics'] } },
      { id: 'hook', template: 'webhook', settings: { url: `${url}/hook` }, consent: { categories: ['analytics'] } },
    ],
  }));

  const digest = (s: string): string => sha256(s);
  const ud = {
    em: digest('jane.doe@example.com'), ph: digest('33612345678'), fn: digest('jane'), ln: digest('doe'), ge: digest('f'), db: digest('19900131'),
    ct: digest('paris'), st: digest('idf'), zp: digest('75001'), country: digest('fr'), external_id: digest('customer-00042'),
  };
  const contents = [{ id: 'SKU-1', quantity: 2, item_price: 19.95 }, { id: 'SKU-2', quantity: 1, item_price: 20, delivery_category: 'curbside' }];
  const fields = (eid: string): [string, string][] => [
    ['id', '1234567890123456'], ['ev', 'Purchase'], ['eid', eid], ['dl', 'https://shop.example.com/checkout/done'], ['rl', 'https://shop.example.com/cart'], ['if', 'false'],
    ['cd[value]', '59.90'], ['cd[currency]', 'EUR'], ['cd[contents]', JSON.stringify(contents)], ['cd[content_ids]', JSON.stringify(['SKU-1', 'SKU-2'])],
    ['cd[content_type]', 'product'], ['cd[content_name]', 'Running shoes'], ['cd[content_category]', 'Shoes'], ['cd[num_items]', '3'], ['cd[order_id]', '00123'],
    ['cd[predicted_ltv]', '300'], ['cd[status]', 'completed'], ['cd[search_string]', 'shoes'], ['cd[delivery_category]', 'home_delivery'],
    ['sw', '1920'], ['sh', '1080'],
    ...Object.entries(ud).map(([k, v]): [string, string] => [`ud[${k}]`, v]),
    ['v', '2.9.179'], ['fbp', 'fb.1.1772366000000.1234567890'], ['fbc', 'fb.1.1772366000000.IwAR2xyz'], ['gcs', 'G111'],
  ];
  const UA = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0';

  async function send(transport: 'get' | 'form' | 'multipart'): Promise<number> {
    const eid = `p-${transport}`;
    if (transport === 'get') return (await fetch(`${ctx.tw.url}/tr/?${new URLSearchParams(fields(eid)).toString()}&rqm=GET`, { headers: { 'user-agent': UA } })).status;
    if (transport === 'form') return (await fetch(`${ctx.tw.url}/tr/`, { method: 'POST', headers: { 'user-agent': UA }, body: new URLSearchParams([...fields(eid), ['rqm', 'formPOST']]) })).status;
    const form = new FormData();
    for (const [k, v] of [...fields(eid), ['rqm', 'SB']]) form.append(k!, v!);
    return (await fetch(`${ctx.tw.url}/tr/`, { method: 'POST', headers: { 'user-agent': UA }, body: form })).status;
  }

  it.each(['get', 'form', 'multipart'] as const)('a %s hit: exact user_data and custom_data at Meta; no hashes as traits elsewhere', async (transport) => {
    const eid = `p-${transport}`;
    expect(await send(transport)).toBe(transport === 'get' ? 200 : 204);
    await ctx.tw.app.flush(5000);

    const hooked = ctx.vendor.hits.filter((h) => h.path === '/hook').flatMap((h) => (h.body as { batch: Record<string, any>[] }).batch).find((e) => e.messageId === eid);
    expect(hooked).toBeDefined();
    const ip = (hooked!.context as { ip: string }).ip;
    // Meta's matching keys are Meta's: under context.meta, never the visitor's traits.
    expect(hooked!.traits).toEqual({});
    expect(hooked!.context).not.toHaveProperty('traits');
    expect(hooked!.context.meta.userData).toEqual(ud);

    const metaEvents = ctx.vendor.hits.filter((h) => h.path === '/meta/events').flatMap((h) => (h.body as { data: Record<string, any>[] }).data);
    const sent = metaEvents.find((e) => e.event_id === eid);
    expect(sent).toBeDefined();
    expect(sent!.event_name).toBe('Purchase');
    expect(sent!.user_data).toStrictEqual({ ...ud, client_ip_address: ip, client_user_agent: UA, fbp: 'fb.1.1772366000000.1234567890', fbc: 'fb.1.1772366000000.IwAR2xyz' });
    expect(sent!.custom_data).toStrictEqual({
      value: 59.9,
      currency: 'EUR',
      order_id: '00123',
      search_string: 'shoes',
      content_ids: ['SKU-1', 'SKU-2'],
      contents: [{ id: 'SKU-1', quantity: 2, item_price: 19.95 }, { id: 'SKU-2', quantity: 1, item_price: 20, delivery_category: 'curbside' }],
      content_type: 'product',
      content_name: 'Running shoes',
      content_category: 'Shoes',
      num_items: 3,
      predicted_ltv: 300,
      status: 'completed',
      delivery_category: 'home_delivery',
    });

    // GA4 gets the items (properties.products, derived from cd[contents]) and none of the hashes.
    const ga4Bodies = ctx.vendor.hits.filter((h) => h.path === '/mp/collect').map((h) => h.body as { user_properties?: unknown; events: { params: Record<string, unknown> }[] });
    for (const hash of Object.values(ud)) expect(JSON.stringify(ga4Bodies)).not.toContain(hash);
    expect(ga4Bodies.every((b) => b.user_properties === undefined)).toBe(true);
    const purchases = ga4Bodies.flatMap((b) => b.events).filter((e) => e.params.transaction_id === '00123');
    expect(purchases.length).toBeGreaterThan(0);
    expect(purchases.at(-1)!.params.items).toEqual([{ item_id: 'SKU-1', price: 19.95, quantity: 2 }, { item_id: 'SKU-2', price: 20, quantity: 1 }]);
  });

  it('a ud value that is not a digest never reaches Meta, hashed or not', async () => {
    const params = new URLSearchParams([['id', '1234567890123456'], ['ev', 'Lead'], ['eid', 'p-plain'], ['dl', 'https://shop.example.com/contact'], ['ud[em]', 'jane.doe@example.com'], ['ud[ph]', '+33 6 12 34 56 78'], ['ud[external_id]', ud.external_id], ['gcs', 'G111']]);
    expect((await fetch(`${ctx.tw.url}/tr/?${params.toString()}`, { headers: { 'user-agent': UA } })).status).toBe(200);
    await ctx.tw.app.flush(5000);
    const sent = ctx.vendor.hits.filter((h) => h.path === '/meta/events').flatMap((h) => (h.body as { data: Record<string, any>[] }).data).find((e) => e.event_id === 'p-plain');
    expect(sent).toBeDefined();
    expect(Object.keys(sent!.user_data as object).sort()).toEqual(['client_ip_address', 'client_user_agent', 'external_id']);
    expect(sent!.user_data.external_id).toBe(ud.external_id);
  });
});
