import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { openDb } from '../store/open.ts';
import { listSubscriptions } from '../store/webhooks.ts';
import { createSubscription } from './webhook-subscriptions.ts';

// The store's half (filters, listing without secrets) runs on both engines in src/store/webhooks.test.ts.
describe('createSubscription', () => {
  let db: Db;
  beforeEach(async () => {
    db = await openDb('sqlite::memory:');
  });
  afterEach(async () => {
    await db.close();
  });

  it('returns the new secret once and records the normalised URL', async () => {
    const { id, secret } = await createSubscription(db, { siteId: 'shop', url: 'https://Hooks.Example.com/consent' }, { now: () => 500 });
    expect(id).toMatch(/^whs_/);
    expect(secret).toMatch(/^whsec_/);
    const list = await listSubscriptions(db, 'shop');
    expect(list).toEqual([{ id, siteId: 'shop', url: 'https://hooks.example.com/consent', filters: {}, createdAt: 500, disabledAt: null, disabledReason: null }]);
    expect(JSON.stringify(list)).not.toContain(secret);
  });

  it('refuses guarded URLs, unless the guard allows the address', async () => {
    const sub = (url: string) => createSubscription(db, { siteId: 'shop', url });
    await expect(sub('http://127.0.0.1:9/')).rejects.toThrow(ValidationError);
    await expect(sub('http://169.254.169.254/')).rejects.toThrow(/link-local/);
    await expect(sub('ftp://example.com/')).rejects.toThrow(/scheme/);
    expect(await listSubscriptions(db, 'shop')).toEqual([]);
    const ok = await createSubscription(db, { siteId: 'shop', url: 'http://127.0.0.1:9/' }, { guard: { allowHosts: ['127.0.0.1'] } });
    expect(ok.id).toMatch(/^whs_/);
  });
});
