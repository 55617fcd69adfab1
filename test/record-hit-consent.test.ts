import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { encodeWithLibrary } from './fixtures/tcf/build.ts';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * `store.recordHitConsent`: consent carried by a hit is written to its visitor's profile, so a
 * later hit without any consent object is decided by it (seed seeka-server-side-consent.txt: "a
 * single browser-side consent action propagates to all server-side destinations on the next
 * ingest", last write wins on the profile). Off (the default), a hit's consent binds that hit only.
 * Both engines.
 */
forEachEngine('consent carried by hits recorded on the profile', (engine) => {
  const now = new Date();
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const tcString = encodeWithLibrary({ lastUpdated: today, purposeConsents: [1, 3, 4], vendorConsents: [7] });

  type Instance = { db: Db; tw: Awaited<ReturnType<typeof startTagwarden>>; reader: string };
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let on: Instance;
  let off: Instance;

  async function start(recordHitConsent: boolean | undefined): Promise<Instance> {
    const db = await engine.open();
    const config = testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { tcf: { purposes: [1, 3, 4] } }, analytics: {} } },
      destinations: [
        { id: 'ads', template: 'webhook', settings: { url: `${vendor.url}/ads` }, consent: { categories: ['advertising'] } },
        { id: 'partner', template: 'webhook', settings: { url: `${vendor.url}/partner` }, consent: { categories: ['advertising'], tcf: { vendorId: 7, purposes: [1, 3, 4] } } },
      ],
      ...(recordHitConsent === undefined ? {} : { store: { recordHitConsent } }),
    });
    const tw = await startTagwarden(config, undefined, { db });
    const reader = (await createApiKey(db, { label: 'reader', scopes: ['consent:read'] })).key;
    return { db, tw, reader };
  }

  beforeAll(async () => {
    vendor = await startVendor();
    on = await start(true);
    off = await start(undefined);
  });

  afterAll(async () => {
    for (const i of [on, off]) {
      await i.tw.close();
      await i.db.close();
    }
    await vendor.close();
  });

  /** Sends one Segment track hit; returns the vendor paths it reached. */
  async function hit(i: Instance, messageId: string, anonymousId: string, context: Record<string, unknown> = {}, query = ''): Promise<string[]> {
    const r = await fetch(`${i.tw.url}/v1/track${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messageId, event: 'Order Completed', anonymousId, timestamp: new Date().toISOString(), context }),
    });
    expect(r.status).toBe(200);
    await i.tw.app.flush(5000);
    return vendor.hits.filter((h) => (h.body as { batch: { messageId: string }[] }).batch.some((e) => e.messageId === messageId)).map((h) => h.path).sort();
  }

  const grant = { consent: { categoryPreferences: { advertising: true } } };
  const deny = { consent: { categoryPreferences: { advertising: false } } };

  async function metric(i: Instance, result: string): Promise<number> {
    const text = await (await fetch(`${i.tw.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`tagwarden_hit_consent_writes_total{result="${result}"}`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }

  // (TCF does not apply to these hits: no gdpr=1 and no string, here or on the profile, so the partner's requirement is not checked.)
  it('on: a granting Segment consent object decides the next hit without one; a later denial revokes', async () => {
    expect(await hit(on, 'on-1', 'visitor-a', grant)).toEqual(['/ads', '/partner']);
    expect(await hit(on, 'on-2', 'visitor-a')).toEqual(['/ads', '/partner']);
    const record = await fetch(`${on.tw.url}/api/v1/subjects/visitor/visitor-a`, { headers: { 'x-api-key': on.reader } });
    expect(((await record.json()) as { items: Record<string, unknown> }).items.advertising).toMatchObject({ status: 'granted', source: 'hit' });
    // The same state again is not written again.
    expect(await hit(on, 'on-3', 'visitor-a', grant)).toEqual(['/ads', '/partner']);
    expect(await metric(on, 'written')).toBe(1);
    expect(await metric(on, 'unchanged')).toBe(1);
    expect(await hit(on, 'on-4', 'visitor-a', deny)).toEqual([]);
    expect(await hit(on, 'on-5', 'visitor-a')).toEqual([]);
    expect(await metric(on, 'written')).toBe(2);
  });

  it("on: a hit's TCF string is recorded and gates the visitor's later hits by vendor", async () => {
    expect(await hit(on, 'tcf-1', 'visitor-t', {}, `?gdpr=1&gdpr_consent=${tcString}`)).toEqual(['/ads', '/partner']);
    expect(await hit(on, 'tcf-2', 'visitor-t')).toEqual(['/ads', '/partner']);
    const record = await fetch(`${on.tw.url}/api/v1/subjects/visitor/visitor-t`, { headers: { 'x-api-key': on.reader } });
    expect(((await record.json()) as { tcfString: string }).tcfString).toBe(tcString);
  });

  it('off (the default): the consent object binds its own hit only', async () => {
    expect(await hit(off, 'off-1', 'visitor-b', grant)).toEqual(['/ads', '/partner']);
    expect(await hit(off, 'off-2', 'visitor-b')).toEqual([]);
    expect((await fetch(`${off.tw.url}/api/v1/subjects/visitor/visitor-b`, { headers: { 'x-api-key': off.reader } })).status).toBe(404);
  });
});
