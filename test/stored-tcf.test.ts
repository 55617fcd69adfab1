import { expect, it } from 'vitest';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';
import { encodeWithLibrary } from './fixtures/tcf/build.ts';

/**
 * Seed seeka-server-side-consent.txt: consent for server-side destinations "is stored on the
 * user's profile under consent.privacy.tcfConsentString", and Seeka "decodes this string on every
 * server-side egress and decides whether each destination is permitted". Seeka's identity payload
 * is pushed to POST /api/v1/consent as is; later hits for that visitor carry no signal at all and
 * are forwarded or dropped by the stored string's purposes and vendor consents; verify answers from
 * it. An invalid stored string is no valid TCF consent. Both engines.
 */
forEachEngine('the stored TCF string gates hits and answers verify', (engine) => {
  // TC strings keep the day only: midnight UTC today, so the string is fresh by the real clock.
  const now = new Date();
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  // Purposes 1, 3 and 4 (advertising here), not 8 (analytics needs 1 and 8); vendor 7 consented, vendor 8 not.
  const tcString = encodeWithLibrary({ lastUpdated: today, purposeConsents: [1, 3, 4], vendorConsents: [7] });
  const revoked = encodeWithLibrary({ lastUpdated: today, purposeConsents: [], vendorConsents: [] });
  const ctx = consentApiHarness(
    engine,
    (vendorUrl) => ({
      site: {
        id: 'shop',
        dataControlMode: 'opt-in',
        categories: { advertising: { tcf: { purposes: [1, 3, 4] } }, analytics: { tcf: { purposes: [1, 8] } }, functional: {} },
      },
      destinations: [
        { id: 'ads', template: 'webhook', settings: { url: `${vendorUrl}/ads` }, consent: { categories: ['advertising'], tcf: { vendorId: 7, purposes: [1, 3, 4] } } },
        { id: 'partner', template: 'webhook', settings: { url: `${vendorUrl}/partner` }, consent: { categories: ['advertising'], tcf: { vendorId: 8, purposes: [1] } } },
        { id: 'stats', template: 'webhook', settings: { url: `${vendorUrl}/stats` }, consent: { categories: ['analytics'] } },
        // Not gated by category, only by its TCF requirement: it must wait for the profile too.
        { id: 'crm', template: 'webhook', settings: { url: `${vendorUrl}/crm` }, consent: { categories: [], tcf: { vendorId: 7, purposes: [1] } } },
        { id: 'crm9', template: 'webhook', settings: { url: `${vendorUrl}/crm9` }, consent: { categories: [], tcf: { vendorId: 9, purposes: [1] } } },
      ],
    }),
    { vendor: true, keys: ['consent:write', 'consent:read'] },
  );

  async function push(body: unknown): Promise<number> {
    const r = await fetch(`${ctx.tw.url}/api/v1/consent`, { method: 'POST', headers: { 'x-api-key': ctx.writer, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await r.text();
    return r.status;
  }

  async function verify(visitorId: string): Promise<unknown> {
    const r = await fetch(`${ctx.tw.url}/api/v1/public/sites/shop/consent/verify?visitor_id=${encodeURIComponent(visitorId)}`, { headers: { 'x-api-key': ctx.reader } });
    return r.json();
  }

  /** A hit with no consent signal at all; returns the paths of the vendors it reached. */
  async function hit(messageId: string, anonymousId: string): Promise<string[]> {
    const r = await fetch(`${ctx.tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'Order Completed', anonymousId }) });
    expect(r.status).toBe(200);
    await ctx.tw.app.flush(5000);
    return ctx.vendor.hits.filter((h) => (h.body as { batch: { messageId: string }[] }).batch.some((e) => e.messageId === messageId)).map((h) => h.path).sort();
  }

  it("Seeka's identity payload: the pushed string decides each destination of a hit without signals", async () => {
    expect(await push({ visitorId: 'seeka-visitor', consent: { privacy: { tcfConsentString: tcString } } })).toBe(200);
    // advertising granted by purposes 1, 3, 4 and vendor 7; vendor 8 and analytics (purpose 8) not.
    expect(await hit('seeka-1', 'seeka-visitor')).toEqual(['/ads', '/crm']);
    // Again, now from the store's cache.
    expect(await hit('seeka-2', 'seeka-visitor')).toEqual(['/ads', '/crm']);
    // CookieBoss's names: the site's advertising answers as marketing. functional, never stated, is absent.
    expect(await verify('seeka-visitor')).toEqual({ hasConsent: true, categories: { marketing: true, analytics: false }, consentedAt: expect.any(String), geoCountry: null });
  });

  it('a newer pushed string revokes; an item stated for a category still decides it', async () => {
    expect(await push({ visitorId: 'seeka-visitor', consent: { privacy: { tcfConsentString: revoked } }, timestamp: new Date(Date.now() + 1000).toISOString() })).toBe(200);
    expect(await hit('seeka-3', 'seeka-visitor')).toEqual([]);
    expect(await verify('seeka-visitor')).toMatchObject({ hasConsent: true, categories: { marketing: false, analytics: false } });
    // tcfString (Tagwarden's own field) works the same, and an item pushed for analytics wins over the string there.
    expect(await push({ visitorId: 'tw-visitor', tcfString: tcString, categories: { analytics: true } })).toBe(200);
    expect(await hit('tw-1', 'tw-visitor')).toEqual(['/ads', '/crm', '/stats']);
    expect(await verify('tw-visitor')).toMatchObject({ categories: { marketing: true, analytics: true } });
  });

  it('an invalid stored string is no valid TCF consent, never consent', async () => {
    // A push of a string that does not decode is refused now (400); one stored before that check
    // (or edited in the database) must still never read as consent.
    expect(await push({ visitorId: 'seeka-bad', consent: { privacy: { tcfConsentString: 'CQtcfstring' } }, categories: { functional: true } })).toBe(400);
    expect(await push({ visitorId: 'seeka-bad', consent: { privacy: { tcfConsentString: tcString } }, categories: { functional: true } })).toBe(200);
    await ctx.db.run("UPDATE consent_records SET tcf_string = 'CQtcfstring' WHERE subject_key = 'visitor:seeka-bad'");
    expect(await hit('bad-1', 'seeka-bad')).toEqual([]);
    expect(await verify('seeka-bad')).toMatchObject({ hasConsent: true, categories: { marketing: false, analytics: false, functional: true } });
  });

  it('a visitor with nothing stored is decided as before (TCF does not apply to the hit)', async () => {
    expect(await hit('none-1', 'stranger')).toEqual(['/crm', '/crm9']);
  });
});
