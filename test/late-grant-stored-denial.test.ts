import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Issue 13, "a client clock must never outrank a denial", for a denial the hit does not carry: a
 * revocation stored a minute before the hit. A hit whose Segment grant is dated 2099 settled its
 * category by itself, so the store was never asked and the hit was forwarded; with
 * `store.recordHitConsent` the grant was then written at the hit's arrival, later than the
 * revocation, and every later hit without signals was forwarded too. A grant dated after the hit's
 * arrival now waits for the store like an unknown category (src/pipeline/create-pipeline.ts) and is
 * never recorded over a stored denial (src/pipeline/record-hit-consent.ts). Both engines.
 */
const adminKey = 'late-grant-admin-key-0123456789ab';

forEachEngine('a late-dated grant and a denial stored before the hit', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let writer: string;
  let reader: string;

  beforeAll(async () => {
    db = await engine.open();
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } }],
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
        debug: { explain: true, adminKey },
        store: { recordHitConsent: true },
      }),
      undefined,
      { db },
    );
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
    reader = (await createApiKey(db, { label: 'reader', scopes: ['consent:read'] })).key;
  });

  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  const lateGrant = { timestamp: '2099-01-01T00:00:00Z', context: { consent: { categoryPreferences: { analytics: true } } } };
  const track = (messageId: string, anonymousId: string, extra: Record<string, unknown> = {}) =>
    fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'x', anonymousId, ...extra }) });
  const sent = () => vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));
  const settle = async () => {
    await tw.app.flush(5000);
    await tw.app.flush(5000);
  };

  it('the hit is dropped, explain says why, and the grant is not written over the revocation', async () => {
    const revokedAt = new Date(Date.now() - 60_000).toISOString();
    const push = await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-revoked', categories: { analytics: false }, timestamp: revokedAt }, { 'x-api-key': writer });
    expect(push.status).toBe(200);

    expect((await track('late-over-revocation', 'v-revoked', lateGrant)).status).toBe(200);
    await settle();
    expect((await track('silent-after', 'v-revoked')).status).toBe(200);
    await settle();
    expect(sent()).not.toContain('late-over-revocation');
    expect(sent()).not.toContain('silent-after');
    // Explain joins what the hit path has cached for the visitor (the store's answer by now).
    const explained = await post(`${tw.url}/debug/explain`, { type: 'track', event: 'x', anonymousId: 'v-revoked', ...lateGrant }, { authorization: `Bearer ${adminKey}` });
    expect(explained.body.consent.categories.analytics).toMatchObject({ status: 'denied', source: 'store' });
    expect(explained.body.destinations[0]).toMatchObject({ id: 'stats', decision: 'drop', reasons: ['consent_denied:analytics'] });
    const check = await fetch(`${tw.url}/api/v1/subjects/visitor/v-revoked/check?category=analytics`, { headers: { 'x-api-key': reader } });
    expect(await check.json()).toMatchObject({ consented: false, state: 'denied', source: 'push', since: revokedAt });
  });

  it('with nothing stored, the same late grant still grants (as of the arrival) and is recorded', async () => {
    expect((await track('late-alone', 'v-new', lateGrant)).status).toBe(200);
    await settle();
    expect(sent()).toContain('late-alone');
    const check = await fetch(`${tw.url}/api/v1/subjects/visitor/v-new/check?category=analytics`, { headers: { 'x-api-key': reader } });
    const body = (await check.json()) as { state: string; source: string; since: string };
    expect(body).toMatchObject({ state: 'granted', source: 'hit' });
    expect(Date.parse(body.since)).toBeLessThanOrEqual(Date.now());
  });

  it('a stored grant is refreshed by it: no denial to outrank', async () => {
    await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-granted', categories: { analytics: true }, timestamp: new Date(Date.now() - 60_000).toISOString() }, { 'x-api-key': writer });
    expect((await track('late-over-grant', 'v-granted', lateGrant)).status).toBe(200);
    await settle();
    expect(sent()).toContain('late-over-grant');
  });
});
