import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { startTagwarden, testConfig } from './helpers.ts';

/**
 * Seed cookieboss-consent-verification-api.txt: "If the visitor hasn't interacted with the consent
 * banner yet, or if the visitor ID is invalid" the answer is the "no consent found" shape. An empty
 * `visitor_id=` (a client whose visitor id is not set yet builds exactly that URL) was a 400 with an
 * error body instead; it is an id that could never be stored, like one with a NUL. A missing
 * parameter stays a 400 ("The visitor_id query parameter is required").
 */
forEachEngine('verify: an invalid visitor id is "no consent found"', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let reader: string;

  beforeAll(async () => {
    db = await engine.open();
    tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: { advertising: {}, analytics: {} } } }), undefined, { db });
    reader = (await createApiKey(db, { label: 'reader', scopes: ['consent:read'] })).key;
  });

  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  const verify = async (query: string) => {
    const res = await fetch(`${tw.url}/api/v1/public/sites/shop/consent/verify${query}`, { headers: { 'X-API-Key': reader } });
    return { status: res.status, body: await res.json() };
  };

  it('empty, NUL, C1 control, too long: 200 and the seed\'s shape exactly; missing: 400 naming visitor_id', async () => {
    for (const q of ['?visitor_id=', '?visitor_id=a%00b', '?visitor_id=a%C2%85b', `?visitor_id=${'v'.repeat(257)}`]) {
      expect(await verify(q)).toStrictEqual({ status: 200, body: { hasConsent: false, categories: null, consentedAt: null, geoCountry: null } });
    }
    const missing = await verify('');
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: { code: 'TW_ERR_VALIDATION', details: { issues: [{ path: 'visitor_id' }] } } });
  });

  it("the seed's Node.js integration sends nothing for such a visitor", async () => {
    const fired: string[] = [];
    for (const visitorId of ['', 'never-seen']) {
      const siteId = 'shop';
      const response = await fetch(`${tw.url}/api/v1/public/sites/${siteId}/consent/verify?visitor_id=${visitorId}`, { headers: { 'X-API-Key': reader } });
      const { hasConsent, categories } = (await response.json()) as { hasConsent: boolean; categories: Record<string, boolean> | null };
      if (hasConsent && categories?.marketing) fired.push(visitorId);
      expect(response.status).toBe(200);
    }
    expect(fired).toEqual([]);
  });
});
