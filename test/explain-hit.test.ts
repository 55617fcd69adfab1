import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { post, withTagwarden } from './helpers.ts';

/**
 * `POST /debug/explain` with `{"hit": {...}}`: a raw request of any client (GA4 `/g/collect`, Meta
 * pixel `/tr`, Segment `/v1/*`) is read by that client's route code and each of its hits explained;
 * nothing is sent. The hits are the golden fixtures the parsers are tested on.
 */
const adminKey = 'explain-admin-key-0123456789';
const auth = { authorization: `Bearer ${adminKey}` };

function fixture(path: string): { request: { method: string; query: string; contentType?: string; body?: string } } {
  return JSON.parse(readFileSync(new URL(`./fixtures/${path}`, import.meta.url), 'utf8'));
}

describe('/debug/explain of raw hits', () => {
  const ctx = withTagwarden((vendorUrl) => ({
    site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { gcm: ['ad_storage'] }, analytics: { gcm: ['analytics_storage'] } } },
    destinations: [
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendorUrl}/meta` },
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, consent: { categories: ['analytics'] }, endpoint: `${vendorUrl}/ga4` },
    ],
    identity: { visitorId: [{ cookie: 'cb_vid' }, { body: 'anonymousId' }] },
    debug: { explain: true, adminKey },
  }));
  const explain = (hit: unknown, extra: Record<string, unknown> = {}) => post(`${ctx.tw.url}/debug/explain`, { hit, ...extra }, auth);
  const byId = (destinations: any[]) => Object.fromEntries(destinations.map((d) => [d.id, d]));

  it('explains each line of a GA4 POST body, consent read from its gcs', async () => {
    const { request } = fixture('ga4/batch-post-3-hits.json');
    const r = await explain({ method: 'POST', path: '/g/collect', query: request.query, headers: { 'content-type': request.contentType, 'user-agent': 'Mozilla/5.0 test' }, body: request.body });
    expect(r.status).toBe(200);
    expect(r.body.client).toBe('ga4');
    expect(r.body.rejected).toEqual([]);
    expect(r.body.hits.map((h: any) => [h.index, h.event.event])).toEqual([[0, 'view_item'], [1, 'add_to_cart'], [2, 'purchase']]);
    const purchase = r.body.hits[2];
    expect(purchase.visitor).toEqual({ id: '1234567890.1712345600', source: 'body:anonymousId' });
    expect(purchase.event.context.userAgent).toBe('Mozilla/5.0 test');
    expect(purchase.consent.categories.analytics).toMatchObject({ status: 'granted', source: 'gcm' });
    expect(byId(purchase.destinations).ga4).toMatchObject({ decision: 'forward', request: { method: 'POST' } });
    expect(JSON.stringify(r.body)).not.toContain('ga4-secret');
    await ctx.tw.app.flush(1000);
    expect(ctx.vendor.hits).toEqual([]);
  });

  it('explains a GET hit and reports the lines the route would refuse', async () => {
    const get = await explain({ path: '/g/collect?v=2&tid=G-1&cid=1.2&en=page_view&gcs=G100' });
    expect(get.status).toBe(200);
    expect(get.body.hits[0].event.type).toBe('page');
    expect(byId(get.body.hits[0].destinations).ga4).toMatchObject({ decision: 'drop', reasons: ['consent_denied:analytics'] });

    const mixed = await explain({ method: 'POST', path: '/g/collect', query: 'v=2&tid=G-1&cid=1.2', body: 'en=ok\nv=1&en=bad' });
    expect(mixed.status).toBe(200);
    expect(mixed.body.hits.map((h: any) => h.index)).toEqual([0]);
    expect(mixed.body.rejected).toEqual([{ index: 1, reason: 'v: must be 2 (GA4)' }]);
  });

  it('explains a Meta pixel hit (urlencoded POST and GET), its hashed ud[em] kept', async () => {
    const { request } = fixture('meta-pixel/purchase-post.json');
    const r = await explain({ method: 'POST', path: '/tr', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: request.body });
    expect(r.status).toBe(200);
    expect(r.body.client).toBe('meta-pixel');
    const [hit] = r.body.hits;
    expect(hit.event).toMatchObject({ type: 'track', event: 'Purchase', properties: { value: 59.9, currency: 'EUR' } });
    expect(hit.event.context.meta.userData.em).toMatch(/^[0-9a-f]{64}$/);
    // No consent signal and opt-in: Meta's advertising category is unknown, so dropped.
    expect(byId(hit.destinations).meta).toMatchObject({ decision: 'drop' });

    // fbevents.js's sendBeacon(FormData): read by the route's own multipart reader.
    const beacon = fixture('meta-pixel/purchase-beacon-multipart.json').request;
    const mp = await explain({ method: 'POST', path: '/tr', headers: { 'content-type': beacon.contentType }, body: beacon.body });
    expect(mp.status).toBe(200);
    expect(mp.body.hits[0].event).toMatchObject({ type: 'track', event: 'Purchase', messageId: 'purchase-00123' });
    expect(mp.body.hits[0].event.context.meta.userData.em).toMatch(/^[0-9a-f]{64}$/);
    const cut = await explain({ method: 'POST', path: '/tr', headers: { 'content-type': beacon.contentType }, body: (beacon.body ?? '').slice(0, 200) });
    expect(cut.status).toBe(400);

    const get = await explain({ method: 'GET', path: '/tr/', query: 'id=1234567890&ev=PageView&dl=https%3A%2F%2Fshop.example%2F', headers: { 'sec-gpc': '1' } });
    expect(get.status).toBe(200);
    expect(get.body.hits[0].event.type).toBe('page');
    expect(get.body.hits[0].consent.gpc).toBe(true);
  });

  it('explains a Segment batch item by item and a single event, cookies read from the hit', async () => {
    const consent = { consent: { categoryPreferences: { advertising: true, analytics: true } } };
    const r = await explain({
      method: 'POST',
      path: '/v1/b',
      headers: { cookie: 'cb_vid=v-1', 'user-agent': 'Mozilla/5.0 test' },
      body: { batch: [{ type: 'track', event: 'A', anonymousId: 'a-1', context: { ...consent, page: { url: 'https://shop.example/' } } }, { type: 'nope' }, { type: 'page', anonymousId: 'a-1', name: 'Home' }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.client).toBe('segment');
    expect(r.body.hits.map((h: any) => [h.index, h.event.type])).toEqual([[0, 'track'], [2, 'page']]);
    expect(r.body.rejected).toMatchObject([{ index: 1, issues: [expect.objectContaining({ path: 'type' })] }]);
    expect(r.body.hits[0].visitor).toEqual({ id: 'v-1', source: 'cookie:cb_vid' });
    expect(byId(r.body.hits[0].destinations).meta).toMatchObject({ decision: 'forward' });

    const single = await explain({ method: 'POST', path: '/v1/t', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ event: 'B', anonymousId: 'a-2' }) });
    expect(single.status).toBe(200);
    expect(single.body.hits[0].event).toMatchObject({ type: 'track', event: 'B', anonymousId: 'a-2' });
  });

  it('keeps the Segment-event form working', async () => {
    const r = await post(`${ctx.tw.url}/debug/explain`, { event: 'C', anonymousId: 'a-3' }, auth);
    expect(r.status).toBe(200);
    expect(r.body.event).toMatchObject({ type: 'track', event: 'C' });
    expect(r.body.destinations).toHaveLength(2);
  });

  it('answers a clear 400 (or 413, 415) for a bad hit', async () => {
    const cases: [unknown, number, RegExp][] = [
      ['x', 400, /^hit: an object/],
      [{ path: '/nope' }, 400, /^hit\.path: "\/nope" is not a client route/],
      [{ path: '/g/collect', verb: 'GET' }, 400, /^hit\.verb: unknown key/],
      [{ method: 'PUT', path: '/tr' }, 400, /^hit\.method: GET or POST/],
      [{ method: 'GET', path: '/tr', body: 'id=1' }, 400, /^hit\.body: a GET hit has no body/],
      [{ path: '/tr?id=1', query: 'ev=x' }, 400, /^hit\.query: the path already has a query string/],
      [{ path: '/tr', headers: { 'bad header': 'x' } }, 400, /^hit\.headers: "bad header" is not a header name/],
      [{ path: '/tr', headers: { cookie: 1 } }, 400, /^hit\.headers\.cookie: a string/],
      [{ path: '/tr', headers: { 'x-big': 'a'.repeat(20_000) } }, 400, /more than 16384 bytes/],
      [{ path: '/tr', query: 'ev=PageView' }, 400, /^no valid meta-pixel hit: id: required/],
      [{ path: '/g/collect', query: 'v=2&tid=G-1' }, 400, /^no valid ga4 hit: en: required/],
      [{ path: '/v1/track' }, 400, /^hit\.method: the Segment routes take POST/],
      [{ method: 'POST', path: '/v1/track', body: '{' }, 400, /^the body is not valid JSON/],
      [{ method: 'POST', path: '/v1/identify', body: { traits: [] } }, 400, /^no valid segment hit: /],
      [{ method: 'POST', path: '/v1/batch', body: { batch: 'x' } }, 400, /^batch: required/],
      [{ method: 'POST', path: '/g/collect', body: { en: 'x' } }, 400, /^hit\.body: the body as sent, a string/],
      [{ method: 'POST', path: '/tr', body: 'id=1&ev=x&p=' + 'a'.repeat(70_000) }, 413, /larger than/],
      [{ method: 'POST', path: '/tr', headers: { 'content-type': 'application/json' }, body: '{}' }, 415, /a \/tr body of application\/json is not read/],
    ];
    for (const [hit, status, message] of cases) {
      const r = await explain(hit);
      expect({ hit, status: r.status }).toEqual({ hit, status });
      expect(r.body.error.message).toMatch(message);
    }
    const extra = await explain({ path: '/tr' }, { event: 'x' });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toBe('event: unknown key (a raw hit is {"hit": {...}} alone)');
  });

  it('needs the admin key for raw hits too', async () => {
    const r = await post(`${ctx.tw.url}/debug/explain`, { hit: { path: '/tr', query: 'id=1&ev=x' } }, { authorization: 'Bearer wrong-key-wrong-key' });
    expect(r.status).toBe(401);
  });
});
