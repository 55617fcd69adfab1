import { describe, expect, it } from 'vitest';
import { post, withTagwarden } from './helpers.ts';

/**
 * `site.jurisdiction` (DESIGN.md "Data control mode": "the mode may depend on the visitor's
 * jurisdiction (a configured geo header), e.g. EU → opt-in"): the same hit is decided opt-in from
 * Germany and opt-out from the US, by the country the CDN's header names; Sec-GPC binds in every mode.
 */
const adminKey = 'jurisdiction-admin-key-0123456789';
const auth = { authorization: `Bearer ${adminKey}` };

describe('the data control mode per visitor region', () => {
  const ctx = withTagwarden((vendorUrl) => ({
    site: {
      id: 'shop',
      dataControlMode: 'opt-out',
      jurisdiction: { header: 'cf-ipcountry', modes: { EU: 'opt-in', UK: 'opt-in', US: 'opt-out', BR: 'disabled' } },
      categories: { advertising: { saleOrShare: true }, analytics: {} },
    },
    destinations: [
      { id: 'stats', template: 'webhook', settings: { url: `${vendorUrl}/stats` }, consent: { categories: ['analytics'] } },
      { id: 'ads', template: 'webhook', settings: { url: `${vendorUrl}/ads` }, consent: { categories: ['advertising'] } },
    ],
    debug: { explain: true, adminKey },
  }));
  const byId = (destinations: any[]) => Object.fromEntries(destinations.map((d) => [d.id, d]));
  const explain = (headers: Record<string, string>, body: Record<string, unknown> = {}) => post(`${ctx.tw.url}/debug/explain`, { event: 'Viewed', anonymousId: 'v1', ...body }, { ...auth, ...headers });

  it('the same hit without consent: dropped from Germany (opt-in), forwarded from the US (opt-out) and with no region (the site\'s opt-out)', async () => {
    const de = await explain({ 'cf-ipcountry': 'DE' });
    expect(de.status).toBe(200);
    expect(de.body.dataControl).toEqual({ mode: 'opt-in', rule: 'group', header: 'cf-ipcountry', value: 'DE', region: 'DE', matched: 'EU', why: 'cf-ipcountry: DE → EU → opt-in' });
    expect(byId(de.body.destinations).stats).toMatchObject({ decision: 'drop', reasons: ['consent_unknown:analytics'] });

    const us = await explain({ 'cf-ipcountry': 'us' });
    expect(us.body.dataControl).toMatchObject({ mode: 'opt-out', rule: 'country', region: 'US', matched: 'US' });
    expect(byId(us.body.destinations).stats).toMatchObject({ decision: 'forward', reasons: ['opt_out_no_signal:analytics'] });

    for (const headers of [{}, { 'cf-ipcountry': 'XX' }, { 'cf-ipcountry': 'T1' }] as Record<string, string>[]) {
      const none = await explain(headers);
      expect(none.body.dataControl).toMatchObject({ mode: 'opt-out', rule: 'no_region' });
      expect(byId(none.body.destinations).stats.decision).toBe('forward');
    }

    // A raw hit's own headers carry its region (not the explain request's).
    const raw = await post(`${ctx.tw.url}/debug/explain`, { hit: { path: '/g/collect?v=2&tid=G-1&cid=1.2&en=page_view', headers: { 'cf-ipcountry': 'gb' } } }, { ...auth, 'cf-ipcountry': 'US' });
    expect(raw.body.hits[0].dataControl).toMatchObject({ mode: 'opt-in', region: 'GB', matched: 'UK' });
  });

  it('real hits: the header decides what the destination receives', async () => {
    const track = (messageId: string, headers: Record<string, string>) =>
      fetch(`${ctx.tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ messageId, event: 'Viewed', anonymousId: 'v2' }) });
    for (const [id, country] of [['from-de', 'DE'], ['from-fr', 'fr'], ['from-us', 'US'], ['from-nowhere', 'XX']] as const) expect((await track(id, { 'cf-ipcountry': country })).status).toBe(200);
    await ctx.tw.app.flush(5000);
    const sent = ctx.vendor.hits.filter((h) => h.path === '/stats').flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));
    expect(sent.sort()).toEqual(['from-nowhere', 'from-us']);
  });

  it('Sec-GPC still denies the sale/share category under opt-out, over a grant', async () => {
    const us = await explain({ 'cf-ipcountry': 'US', 'sec-gpc': '1' }, { context: { consent: { categoryPreferences: { advertising: true, analytics: true } } } });
    expect(us.body.dataControl.mode).toBe('opt-out');
    expect(byId(us.body.destinations).ads).toMatchObject({ decision: 'drop', reasons: ['gpc_opt_out'] });
    expect(byId(us.body.destinations).stats).toMatchObject({ decision: 'forward' });
    // Without a consent object at all (opt-out would forward it): still denied.
    const bare = await explain({ 'cf-ipcountry': 'US', 'sec-gpc': '1' });
    expect(byId(bare.body.destinations).ads).toMatchObject({ decision: 'drop', reasons: ['gpc_opt_out'] });
    expect(byId(bare.body.destinations).stats).toMatchObject({ decision: 'forward', reasons: ['opt_out_no_signal:analytics'] });
  });
});
