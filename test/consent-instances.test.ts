import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { forEachEngine } from './engines.ts';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Two Tagwarden instances on one PostgreSQL: a consent change written through one reaches the
 * other's resolution cache within a second (LISTEN/NOTIFY), so a hit on the second is decided by
 * the new consent.
 */
forEachEngine('two instances on one store', (engine) => {
  if (engine.name !== 'postgres') {
    describe.skip('(PostgreSQL only: one SQLite file serves one instance)', () => undefined);
    return;
  }
  let dbA: Db;
  let dbB: Db;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let a: Awaited<ReturnType<typeof startTagwarden>>;
  let b: Awaited<ReturnType<typeof startTagwarden>>;
  let key: string;

  beforeAll(async () => {
    dbA = await engine.open();
    dbB = await openDb(engine.url());
    vendor = await startVendor();
    const config = testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
      destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } }],
    });
    a = await startTagwarden(config, undefined, { db: dbA });
    b = await startTagwarden(config, undefined, { db: dbB });
    key = (await createApiKey(dbA, { label: 'w', scopes: ['consent:write'] })).key;
  });

  afterAll(async () => {
    await a.close();
    await b.close();
    await vendor.close();
    await dbA.close();
    await dbB.close();
  });

  const hit = (url: string, messageId: string) =>
    fetch(`${url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'x', anonymousId: 'shared-visitor' }) });
  const delivered = () => vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));

  it('a grant pushed through one instance decides hits on the other within a second', async () => {
    // B learns "nothing stored" for the visitor and caches it.
    await hit(b.url, 'before');
    await b.app.flush(5000);
    expect(delivered()).not.toContain('before');

    const pushed = Date.now();
    const r = await fetch(`${a.url}/api/v1/consent`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ visitorId: 'shared-visitor', categories: { analytics: true } }) });
    expect(r.status).toBe(200);

    let n = 0;
    let seenAt: number | undefined;
    while (Date.now() - pushed < 2000 && seenAt === undefined) {
      const id = `after-${n++}`;
      await hit(b.url, id);
      await b.app.flush(2000);
      if (delivered().includes(id)) seenAt = Date.now();
      else await new Promise((res) => setTimeout(res, 50));
    }
    expect(seenAt).toBeDefined();
    expect(seenAt! - pushed).toBeLessThan(1000);
  });
});
