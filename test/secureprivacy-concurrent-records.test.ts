import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, testConfig } from './helpers.ts';

/**
 * SecurePrivacy records sent at once for one CustomUserId and Reference (seed
 * secureprivacy-universal-consent-api.txt: each carries its own ConsentType, Metadata and URI, and
 * the fingerprint is kept with its audit record). The requests carry no time: the server dates
 * them, and on PostgreSQL concurrent requests read the same current record and get the same
 * millisecond. Each answered 200 must still have its own audit row with its own evidence, never
 * be taken for a duplicate of another request's; and the log must still prove the state.
 */
forEachEngine('SecurePrivacy records sent at once', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let writer: string;
  let auditor: string;
  // A clock that does not move: every request is dated the same instant unless the route orders them.
  const clock = new FakeClock(Date.UTC(2026, 0, 15, 9, 0, 0));

  beforeAll(async () => {
    db = await engine.open();
    const config = testConfig({
      site: { id: 'shop', categories: { necessary: {}, analytics: {} } },
      api: { rateLimit: { perSecond: 10_000, burst: 10_000 }, secureprivacy: { integrations: [{ id: 'int-1', reference: 'Newsletter' }], integrationRateLimit: { perSecond: 10_000, burst: 10_000 } } },
    });
    tw = await startTagwarden(config, undefined, { db, consentClock: clock, webhooks: false });
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
    auditor = (await createApiKey(db, { label: 'auditor', scopes: ['audit:read'] })).key;
  });

  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  async function refRows(subject: string, item: string): Promise<Record<string, unknown>[]> {
    const r = await fetch(`${tw.url}/api/v1/audit?subject=${encodeURIComponent(subject)}&reference=${encodeURIComponent(item)}&limit=1000`, { headers: { 'x-api-key': auditor } });
    expect(r.status).toBe(200);
    return ((await r.json()) as { entries: { attributes: Record<string, unknown> }[] }).entries.map((e) => e.attributes);
  }

  it('every create answered 200 has its own audit row with its ConsentType and Metadata', async () => {
    const n = 24;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        post(`${tw.url}/api/universalconsent`, { ConsentGiven: 'All', CustomUserId: 'anna.jensen', Reference: 'Dealership', ConsentType: `Type${i}`, Metadata: `{"form":${i}}` }, { 'x-api-key': writer }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: n }, () => 200));
    const rows = await refRows('user:anna.jensen', 'Dealership');
    expect(rows.map((a) => a.ConsentType).sort()).toEqual(Array.from({ length: n }, (_, i) => `Type${i}`).sort());
    expect(new Set(rows.map((a) => a.Metadata)).size).toBe(n);
    const v = await fetch(`${tw.url}/api/v1/audit/verify`, { headers: { 'x-api-key': auditor } });
    expect(await v.json()).toMatchObject({ ok: true });
  });

  it('every integration record answered 200 has its own audit row with its ConsentType', async () => {
    const n = 24;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => post(`${tw.url}/api/universalconsent/integration/int-1`, { ConsentGiven: 'All', CustomUserId: 'carl', ConsentType: `Email${i}` })));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: n }, () => 200));
    const rows = await refRows('user:carl', 'Newsletter');
    expect(rows.map((a) => a.ConsentType).sort()).toEqual(Array.from({ length: n }, (_, i) => `Email${i}`).sort());
    const v = await fetch(`${tw.url}/api/v1/audit/verify`, { headers: { 'x-api-key': auditor } });
    expect(await v.json()).toMatchObject({ ok: true });
  });
});
