import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTagwarden, testConfig } from './helpers.ts';

/** Tagwarden's first-party visitor id cookie: set only when the hit's own consent grants its category. */
describe('first-party visitor id cookie', () => {
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  beforeAll(async () => {
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: { gcm: ['analytics_storage'] } } },
        identity: { visitorId: [{ cookie: '_tw_vid' }, { body: 'anonymousId' }], cookie: { enabled: true, category: 'analytics', domain: 'example.com', maxAgeDays: 30 } },
      }),
    );
  });
  afterAll(async () => {
    await tw.close();
  });

  const ga4 = (gcs: string, cookie?: string) =>
    fetch(`${tw.url}/g/collect?v=2&tid=G-TEST1234&cid=555.666&en=page_view&gcs=${gcs}`, { method: 'POST', ...(cookie === undefined ? {} : { headers: { cookie } }) });

  it('is set (Secure, HttpOnly, SameSite=Lax, the configured domain and lifetime) when the hit grants the category', async () => {
    const r = await ga4('G111');
    expect(r.status).toBe(204);
    expect(r.headers.get('set-cookie')).toBe('_tw_vid=555.666; Path=/; Max-Age=2592000; Secure; HttpOnly; SameSite=Lax; Domain=example.com');
  });

  it('is not set when the category is denied or unknown', async () => {
    expect((await ga4('G100')).headers.get('set-cookie')).toBeNull();
    expect((await fetch(`${tw.url}/g/collect?v=2&tid=G-TEST1234&cid=555.666&en=page_view`, { method: 'POST' })).headers.get('set-cookie')).toBeNull();
  });

  it('keeps the id it set before, and works for Segment and pixel hits too', async () => {
    expect((await ga4('G111', '_tw_vid=earlier-id')).headers.get('set-cookie')).toMatch(/^_tw_vid=earlier-id;/);
    const seg = await fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: 'x', anonymousId: 'seg-1', context: { consent: { categoryPreferences: { analytics: true } } } }) });
    expect(seg.headers.get('set-cookie')).toMatch(/^_tw_vid=seg-1;/);
    const px = await fetch(`${tw.url}/tr?id=1234567890&ev=PageView&gcs=G111&fbp=fb.1.1700000000000.42`);
    expect(px.headers.get('set-cookie')).toMatch(/^_tw_vid=fb\.1\.1700000000000\.42;/);
  });
});
