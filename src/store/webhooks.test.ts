import { afterEach, beforeEach, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { ValidationError } from '../errors.ts';
import { createConsentStore } from './consent.ts';
import type { Db } from './db.ts';
import type { ConsentChange, ItemState } from './types.ts';
import { claimDue, deleteSubscription, enqueueForChange, getSubscription, insertSubscription, listDeliveries, listSubscriptions, matchesFilters, recordResult, type WebhookPayload } from './webhooks.ts';

const SITE = 'shop';
const URL1 = 'https://hooks.example.com/consent';
// The API makes secrets and checks URLs (src/api/webhook-subscriptions.test.ts); the store records them.
const SECRET = 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0';

function item(over: Partial<ItemState> = {}): ItemState {
  return { item: 'analytics', status: 'granted', consentAt: 1000, validUntil: null, source: 'push', expired: false, ...over };
}

function change(over: Partial<ConsentChange> = {}): ConsentChange {
  return { siteId: SITE, subject: { type: 'visitor', id: 'v1' }, version: 3, items: [item()], recordChanged: false, at: 10_000, ...over };
}

forEachEngine('webhook store', (engine) => {
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
  });
  afterEach(async () => {
    await db.close();
  });

  const enqueue = (c: ConsentChange) => db.transaction((tx) => enqueueForChange(tx, c));
  const sub = (over: { url?: string; filters?: object; siteId?: string } = {}) =>
    insertSubscription(db, { siteId: over.siteId ?? SITE, url: over.url ?? URL1, filters: over.filters ?? {}, secret: SECRET }, { now: () => 500 });

  it('records a subscription: the secret is never listed', async () => {
    const { id } = await sub({ filters: { items: ['ads', 'ads', 'analytics'] } });
    expect(id).toMatch(/^whs_/);
    const list = await listSubscriptions(db, SITE);
    expect(list).toEqual([{ id, siteId: SITE, url: URL1, filters: { items: ['ads', 'analytics'] }, createdAt: 500, disabledAt: null, disabledReason: null }]);
    expect(JSON.stringify(list)).not.toContain(SECRET);
    expect(await listSubscriptions(db, 'other')).toEqual([]);
    expect(await getSubscription(db, SITE, id)).toEqual(list[0]);
    expect(await getSubscription(db, 'other', id)).toBeUndefined();
  });

  it('refuses bad filters and a missing site', async () => {
    await expect(sub({ filters: { items: [] } })).rejects.toThrow(ValidationError);
    await expect(sub({ filters: { items: [] } })).rejects.toThrow(/filters.items/);
    await expect(sub({ filters: { items: [''] } })).rejects.toThrow(/filters.items/);
    await expect(sub({ filters: { colours: ['red'] } })).rejects.toThrow(/unknown filter/);
    await expect(sub({ siteId: '' })).rejects.toThrow(/siteId/);
    expect(await listSubscriptions(db, SITE)).toEqual([]);
  });

  it('enqueues one delivery per matching active subscription, inside the caller transaction', async () => {
    const all = await sub();
    const ads = await sub({ filters: { items: ['ads'] } });
    const analyticsPush = await sub({ filters: { items: ['analytics'], sources: ['push'] } });
    const imports = await sub({ filters: { sources: ['import'] } });
    const gone = await sub();
    await deleteSubscription(db, SITE, gone.id);
    await sub({ siteId: 'other' });

    await enqueue(change());
    const count = async (id: string) => (await listDeliveries(db, id)).length;
    expect([await count(all.id), await count(ads.id), await count(analyticsPush.id), await count(imports.id), await count(gone.id)]).toEqual([1, 0, 1, 0, 0]);

    const [d] = await listDeliveries(db, all.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: 10_000, lockedUntil: null, createdAt: 10_000 });
    const payload = JSON.parse(d!.payload) as WebhookPayload;
    expect(payload).toEqual({ id: d!.id, type: 'consent.changed', siteId: SITE, subject: { type: 'visitor', id: 'v1' }, version: 3, items: [item()], recordChanged: false, at: 10_000 });
    expect(d!.id).toMatch(/^msg_[A-Za-z0-9_-]+$/);

    // A rolled-back write announces nothing.
    await expect(
      db.transaction(async (tx) => {
        await enqueueForChange(tx, change({ version: 4 }));
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await count(all.id)).toBe(1);
  });

  it('filters: an item must pass every filter given; record-only changes reach unfiltered subscriptions only', () => {
    const c = change({ items: [item({ item: 'ads', source: 'import' }), item({ item: 'analytics', source: 'push' })] });
    expect(matchesFilters({}, c)).toBe(true);
    expect(matchesFilters({ items: ['ads'] }, c)).toBe(true);
    expect(matchesFilters({ items: ['ads'], sources: ['import'] }, c)).toBe(true);
    expect(matchesFilters({ items: ['ads'], sources: ['push'] }, c)).toBe(false);
    expect(matchesFilters({ sources: ['crm'] }, c)).toBe(false);
    const record = change({ items: [], recordChanged: true });
    expect(matchesFilters({}, record)).toBe(true);
    expect(matchesFilters({ items: ['ads'] }, record)).toBe(false);
  });

  it('is a ChangeHook of the consent store: a consent write enqueues its delivery', async () => {
    const s = await sub();
    const store = createConsentStore(db, { now: () => 7_000, onChange: enqueueForChange });
    await store.apply([
      { siteId: SITE, subject: { type: 'visitor', id: 'v9' }, action: 'accept', item: 'analytics', consentAt: 6_000, validUntil: null, source: 'push', valid: true, payloadHash: 'p'.repeat(64) },
    ]);
    const [d] = await listDeliveries(db, s.id);
    const payload = JSON.parse(d!.payload) as WebhookPayload;
    expect(payload).toMatchObject({ type: 'consent.changed', siteId: SITE, subject: { type: 'visitor', id: 'v9' }, at: 7_000, items: [{ item: 'analytics', status: 'granted', source: 'push' }] });
    expect(payload.version).toBe((await store.read(SITE, { type: 'visitor', id: 'v9' }))!.version);
  });

  it('claims due deliveries once, with a lock that lapses (at least once), counting attempts', async () => {
    const s = await sub();
    await enqueue(change({ at: 100 }));
    await enqueue(change({ at: 200, version: 4 }));
    await enqueue(change({ at: 300, version: 5 }));
    expect(await claimDue(db, { now: 50, limit: 10, lockMs: 1000 })).toEqual([]);

    const first = await claimDue(db, { now: 250, limit: 10, lockMs: 1000 });
    expect(first.map((d) => JSON.parse(d.payload).version)).toEqual([3, 4]);
    const secret = (await db.get<{ secret: string }>('SELECT secret FROM webhook_subscriptions WHERE id = ?', [s.id]))!.secret;
    expect(first[0]).toMatchObject({ subscriptionId: s.id, url: URL1, secret, attempts: 1, createdAt: 100, lockedUntil: 1250 });

    // Locked: not claimed again; the third one is due now.
    const second = await claimDue(db, { now: 400, limit: 10, lockMs: 1000 });
    expect(second.map((d) => JSON.parse(d.payload).version)).toEqual([5]);
    expect(await claimDue(db, { now: 1249, limit: 10, lockMs: 1000 })).toEqual([]);

    // The worker that claimed them died: after locked_until they are claimed again, same id.
    const again = await claimDue(db, { now: 1250, limit: 1, lockMs: 1000 });
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ id: first[0]!.id, attempts: 2, lockedUntil: 2250 });
  });

  it('concurrent claims take disjoint sets', async () => {
    await sub();
    for (let i = 0; i < 12; i++) await enqueue(change({ at: 100 + i, version: i }));
    const claims = await Promise.all([1, 2, 3, 4].map(() => claimDue(db, { now: 1000, limit: 4, lockMs: 60_000 })));
    const ids = claims.flat().map((d) => d.id);
    expect(ids).toHaveLength(12);
    expect(new Set(ids).size).toBe(12);
  });

  it('records results: delivered, retry (due later), failed; a stale claim records nothing', async () => {
    const s = await sub();
    for (let i = 0; i < 3; i++) await enqueue(change({ at: 100 + i, version: i }));
    const [a, b, c] = await claimDue(db, { now: 1000, limit: 10, lockMs: 500 });

    expect(await recordResult(db, a!.id, { kind: 'delivered', at: 1100, status: 204, attempt: a!.attempts })).toBe(true);
    expect(await recordResult(db, a!.id, { kind: 'failed', at: 1200 })).toBe(false);
    expect(await recordResult(db, b!.id, { kind: 'retry', at: 1100, nextAttemptAt: 5000, status: 500, error: 'status_500', attempt: b!.attempts })).toBe(true);
    expect(await recordResult(db, 'msg_unknown', { kind: 'delivered', at: 1100 })).toBe(false);

    // c's claim lapsed and another worker took it: the first worker's late result is not recorded.
    const retaken = await claimDue(db, { now: 1600, limit: 10, lockMs: 500 });
    expect(retaken.map((d) => d.id)).toEqual([c!.id]);
    expect(await recordResult(db, c!.id, { kind: 'failed', at: 1700, error: 'late', attempt: c!.attempts })).toBe(false);
    expect(await recordResult(db, c!.id, { kind: 'failed', at: 1700, error: 'x'.repeat(2000), attempt: retaken[0]!.attempts })).toBe(true);

    const byId = new Map((await listDeliveries(db, s.id)).map((d) => [d.id, d]));
    expect(byId.get(a!.id)).toMatchObject({ status: 'delivered', lastStatus: 204, lastError: null, lockedUntil: null, attempts: 1 });
    expect(byId.get(b!.id)).toMatchObject({ status: 'pending', nextAttemptAt: 5000, lastStatus: 500, lastError: 'status_500', lockedUntil: null });
    expect(byId.get(c!.id)).toMatchObject({ status: 'failed', attempts: 2 });
    expect(byId.get(c!.id)!.lastError).toHaveLength(500);

    expect(await claimDue(db, { now: 4999, limit: 10, lockMs: 500 })).toEqual([]);
    expect((await claimDue(db, { now: 5000, limit: 10, lockMs: 500 })).map((d) => d.id)).toEqual([b!.id]);
  });

  it('410 gone: the subscription is disabled and its other pending deliveries cancelled', async () => {
    const s = await sub();
    const other = await sub();
    await enqueue(change({ at: 100 }));
    await enqueue(change({ at: 200, version: 4 }));
    const claimed = await claimDue(db, { now: 150, limit: 10, lockMs: 500 });
    const mine = claimed.find((d) => d.subscriptionId === s.id)!;
    expect(await recordResult(db, mine.id, { kind: 'gone', at: 160, status: 410, attempt: mine.attempts })).toBe(true);

    expect(await getSubscription(db, SITE, s.id)).toMatchObject({ disabledAt: 160, disabledReason: 'gone' });
    expect((await listDeliveries(db, s.id)).map((d) => d.status).sort()).toEqual(['cancelled', 'gone']);
    expect((await getSubscription(db, SITE, other.id))!.disabledAt).toBeNull();
    const later = await claimDue(db, { now: 10_000, limit: 10, lockMs: 500 });
    expect(later.every((d) => d.subscriptionId === other.id)).toBe(true);
    // Nothing new is enqueued for a disabled subscription.
    await enqueue(change({ at: 300, version: 5 }));
    expect(await listDeliveries(db, s.id)).toHaveLength(2);
  });

  it('deleteSubscription disables (per site), cancels pending deliveries, and is idempotent', async () => {
    const s = await sub();
    await enqueue(change());
    expect(await deleteSubscription(db, 'other', s.id)).toBe(false);
    expect(await deleteSubscription(db, SITE, s.id, { now: () => 900 })).toBe(true);
    expect(await deleteSubscription(db, SITE, s.id)).toBe(false);
    expect(await getSubscription(db, SITE, s.id)).toMatchObject({ disabledAt: 900, disabledReason: 'deleted' });
    expect((await listDeliveries(db, s.id)).map((d) => d.status)).toEqual(['cancelled']);
    expect(await claimDue(db, { now: 100_000, limit: 10, lockMs: 500 })).toEqual([]);
    expect(await listSubscriptions(db, SITE, { includeDisabled: false })).toEqual([]);
    expect(await listSubscriptions(db, SITE)).toHaveLength(1);
  });
});
