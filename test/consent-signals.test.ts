import { describe, expect, it } from 'vitest';
import { encodeWithLibrary } from './fixtures/tcf/build.ts';
import { post, withTagwarden } from './helpers.ts';

/**
 * Consent signals beyond the Segment object, end to end over HTTP: Sec-GPC, Google Consent Mode in
 * the query string, a TCF string from the query, the event and the cookie, and a destination with
 * a TCF requirement. Asserts which vendor requests reached the fake vendors.
 */
describe('end to end: GPC, Consent Mode and TCF', () => {
  // A string from today (TCF stores the day only), consenting to purposes 1, 3, 4 and 8, vendor 7.
  const today = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()));
  const tcString = encodeWithLibrary({ lastUpdated: today, purposeConsents: [1, 3, 4, 8], vendorConsents: [7] });
  const noVendor = encodeWithLibrary({ lastUpdated: today, purposeConsents: [1, 3, 4, 8], vendorConsents: [8] });
  const ctx = withTagwarden((url) => ({
    site: {
      id: 'shop',
      dataControlMode: 'opt-in',
      categories: {
        advertising: { saleOrShare: true, gcm: ['ad_storage', 'ad_user_data'], tcf: { purposes: [1, 3, 4] } },
        analytics: { gcm: ['analytics_storage'], tcf: { purposes: [1, 8] } },
      },
    },
    identity: { visitorId: [{ cookie: 'cb_vid' }, { body: 'anonymousId' }] },
    destinations: [
      { id: 'ads', template: 'webhook', settings: { url: `${url}/ads` }, consent: { categories: ['advertising'] } },
      { id: 'stats', template: 'webhook', settings: { url: `${url}/stats` }, consent: { categories: ['analytics'] } },
      { id: 'partner', template: 'webhook', settings: { url: `${url}/partner` }, consent: { categories: ['analytics'], tcf: { vendorId: 7, purposes: [1, 8] } } },
    ],
    debug: { explain: true, adminKey: 'explain-admin-key-0123456789' },
  }));

  async function send(id: string, opts: { query?: string; headers?: Record<string, string>; context?: Record<string, unknown> } = {}): Promise<string[]> {
    const body = { messageId: id, event: 'Order Completed', anonymousId: `anon-${id}`, timestamp: new Date().toISOString(), context: opts.context ?? {} };
    const r = await post(`${ctx.tw.url}/v1/track${opts.query === undefined ? '' : `?${opts.query}`}`, body, opts.headers);
    expect(r.status).toBe(200);
    await ctx.tw.app.flush(5000);
    return ctx.vendor.hits.filter((h) => (h.body as { batch: { messageId: string }[] }).batch.some((e) => e.messageId === id)).map((h) => h.path).sort();
  }

  const granted = { consent: { categoryPreferences: { advertising: true, analytics: true } } };

  it('without signals nothing is sent (opt-in)', async () => {
    expect(await send('none')).toEqual([]);
  });

  it('Sec-GPC: 1 stops the sale/share category even when the event grants it', async () => {
    // (TCF does not apply to these hits: no gdpr=1 and no string, so the partner's TCF requirement is not checked.)
    expect(await send('gpc', { context: granted, headers: { 'sec-gpc': '1' } })).toEqual(['/partner', '/stats']);
    expect(await send('no-gpc', { context: granted })).toEqual(['/ads', '/partner', '/stats']);
  });

  it('Consent Mode in the query string: G111 grants analytics only (ad_user_data is not in gcs)', async () => {
    expect(await send('gcs', { query: 'gcs=G111' })).toEqual(['/partner', '/stats']);
    expect(await send('gcd', { query: 'gcd=13v3v3v3v5' })).toEqual(['/ads', '/partner', '/stats']);
    expect(await send('gcd-denied', { query: 'gcd=13q3q3q3q5', context: { consent: { categoryPreferences: { advertising: true } } } })).toEqual([]);
  });

  it('a TCF string grants by purposes, and the vendor requirement gates the partner', async () => {
    expect(await send('tcf-query', { query: `gdpr=1&gdpr_consent=${tcString}` })).toEqual(['/ads', '/partner', '/stats']);
    expect(await send('tcf-cookie', { headers: { cookie: `euconsent-v2=${tcString}` } })).toEqual(['/ads', '/partner', '/stats']);
    expect(await send('tcf-body', { context: { consent: { privacy: { tcfConsentString: tcString } } } })).toEqual(['/ads', '/partner', '/stats']);
    expect(await send('tcf-no-vendor', { query: `gdpr=1&gdpr_consent=${noVendor}` })).toEqual(['/ads', '/stats']);
  });

  it('gdpr=1 without a string drops the TCF-gated destination even when the event grants everything', async () => {
    expect(await send('gdpr-no-string', { query: 'gdpr=1', context: granted })).toEqual(['/ads', '/stats']);
  });

  it('a garbled TCF string revokes what it covers and is never read as consent', async () => {
    expect(await send('tcf-garbled', { query: 'gdpr=1&gdpr_consent=CPxxxxGarbage', context: granted })).toEqual([]);
  });

  it('explain shows the merged state, the signal behind each category and the TCF summary', async () => {
    const r = await post(
      `${ctx.tw.url}/debug/explain?gdpr=1&gdpr_consent=${tcString}`,
      { type: 'track', event: 'Order Completed', anonymousId: 'anon-x', context: { consent: { categoryPreferences: { analytics: false } } } },
      { authorization: 'Bearer explain-admin-key-0123456789', 'sec-gpc': '1', cookie: 'cb_vid=cmp-1' },
    );
    expect(r.status).toBe(200);
    expect(r.body.visitor).toEqual({ id: 'cmp-1', source: 'cookie:cb_vid' });
    expect(r.body.consent.gpc).toBe(true);
    expect(r.body.consent.categories.advertising).toEqual({ status: 'denied', source: 'gpc' });
    // The event's own object is more recent than the string's day: it wins for analytics.
    expect(r.body.consent.categories.analytics).toMatchObject({ status: 'denied', source: 'segment' });
    expect(r.body.consent.tcf).toMatchObject({ applies: true, source: 'query:gdpr_consent', valid: true, policyVersion: 4, purposeConsents: [1, 3, 4, 8] });
    const byId = Object.fromEntries((r.body.destinations as { id: string }[]).map((d) => [d.id, d]));
    expect(byId.ads).toMatchObject({ decision: 'drop', reasons: ['gpc_opt_out'] });
    expect(byId.partner).toMatchObject({ decision: 'drop', reasons: ['consent_denied:analytics'] });
  });
});
