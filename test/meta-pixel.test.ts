import { describe, expect, it } from 'vitest';
import { withTagwarden } from './helpers.ts';

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
