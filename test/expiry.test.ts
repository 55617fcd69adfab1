/**
 * Expiry events (issue 13, "Expiry"): a grant whose valid_until passes gets one `expired` audit row
 * (consent_at = the valid_until, referencing the grant's audit row) and one signed
 * `consent.expired` webhook to a real receiver on 127.0.0.1, a version bump, and nothing more on
 * later sweeps; a grant replaced before it expired is not announced; two sweepers never announce
 * one expiry twice; the chain still verifies. Time is a FakeClock; nothing sleeps. Both engines.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { UrlGuardOptions } from '../src/api/url-guard.ts';
import { verifyWebhook } from '../src/api/webhook-sign.ts';
import { createSubscription } from '../src/api/webhook-subscriptions.ts';
import { createWebhookWorker, type WebhookWorker } from '../src/api/webhook-worker.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { queryAudit, verifyAuditChain, type AuditRow } from '../src/store/audit.ts';
import { createConsentStore, type ConsentStore } from '../src/store/consent.ts';
import type { Db } from '../src/store/db.ts';
import { createExpirySweeper, sweepExpired, type ExpirySweeper } from '../src/store/expiry.ts';
import { openDb } from '../src/store/open.ts';
import { startChangeFeed } from '../src/store/notify.ts';
import type { ConsentInput } from '../src/store/types.ts';
import { enqueueForChange, type WebhookPayload } from '../src/store/webhooks.ts';
import { forEachEngine } from './engines.ts';
import { startTagwarden, testConfig } from './helpers.ts';
import { startReceiver } from './webhook-receiver.ts';

const SITE = 'shop';
const T0 = 1_750_000_000_000;
const GUARD: UrlGuardOptions = { allowHosts: ['127.0.0.1'] };

function grant(over: Partial<ConsentInput> = {}): ConsentInput {
  return { siteId: SITE, subject: { type: 'user', id: 'u1' }, action: 'accept', item: 'newsletter', consentAt: T0 - 1000, validUntil: T0 + 10_000, source: 'private_api', valid: true, payloadHash: 'p'.repeat(64), ...over };
}

async function expiredRows(db: Db): Promise<AuditRow[]> {
  return (await queryAudit(db, { siteId: SITE }, undefined, 1000)).rows.filter((r) => r.action === 'expired');
}

forEachEngine('expiry events', (engine) => {
  let db: Db;
  let clock: FakeClock;
  let store: ConsentStore;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let worker: WebhookWorker;
  let sweeper: ExpirySweeper;
  let secret: string;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    db = await engine.open();
    clock = new FakeClock(T0);
    store = createConsentStore(db, { clock, onChange: enqueueForChange });
    receiver = await startReceiver('/hooks');
    closers.push(() => receiver.close());
    secret = (await createSubscription(db, { siteId: SITE, url: receiver.url, filters: {} }, { guard: GUARD, clock })).secret;
    worker = createWebhookWorker({ db, guard: GUARD, clock, random: () => 0.5, timeoutMs: 5000, lockMs: 30_000 });
    closers.push(() => worker.stop());
    sweeper = createExpirySweeper({ db, clock, intervalMs: 60_000, batchSize: 50 });
    closers.push(() => sweeper.stop());
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await db.close();
  });

  /** The bodies delivered by one worker round. */
  async function deliver(): Promise<WebhookPayload[]> {
    const before = receiver.hits.length;
    await worker.runOnce();
    return receiver.hits.slice(before).map((h) => JSON.parse(h.body) as WebhookPayload);
  }

  it('a passed valid_until: one expired audit row, one signed consent.expired delivery, a version bump; nothing on the next sweep', async () => {
    const [outcome] = await store.apply([grant()]);
    expect((await deliver()).map((p) => p.type)).toEqual(['consent.changed']);
    const before = await store.read(SITE, { type: 'user', id: 'u1' });

    // Not due yet: nothing.
    expect((await sweeper.runOnce())[0]!.expired).toEqual([]);
    // The sweeper's own timer, driven by the clock; stop() waits for the sweep it started.
    sweeper.start();
    clock.advance(60_000);
    await sweeper.stop();

    const rows = await expiredRows(db);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      subjectKey: 'user:u1',
      action: 'expired',
      item: 'newsletter',
      consentAt: T0 + 10_000,
      validUntil: T0 + 10_000,
      source: 'expiry',
      applied: false,
      valid: true,
      importedAt: T0 + 60_000,
      attributes: { grantSeq: outcome!.auditSeq },
    });

    const after = await store.read(SITE, { type: 'user', id: 'u1' });
    expect(after!.version).toBeGreaterThan(before!.version);
    // State-neutral: the stored grant is untouched; it reads denied because it expired.
    expect(after!.items.newsletter).toEqual({ item: 'newsletter', status: 'denied', consentAt: T0 - 1000, validUntil: T0 + 10_000, source: 'private_api', expired: true });

    const sent = receiver.hits.length;
    const payloads = await deliver();
    expect(payloads).toEqual([
      {
        id: receiver.hits[sent]!.headers['webhook-id'],
        type: 'consent.expired',
        siteId: SITE,
        subject: { type: 'user', id: 'u1' },
        version: after!.version,
        items: [{ item: 'newsletter', status: 'denied', consentAt: T0 - 1000, validUntil: T0 + 10_000, source: 'private_api', expired: true }],
        recordChanged: false,
        at: T0 + 60_000,
      },
    ]);
    expect(verifyWebhook(secret, receiver.hits[sent]!.headers, receiver.hits[sent]!.body, { nowSec: (T0 + 60_000) / 1000 }).ok).toBe(true);

    // Later sweeps: no second row, no second delivery.
    clock.advance(120_000);
    expect((await sweeper.runOnce()).flatMap((r) => r.expired)).toEqual([]);
    expect(await expiredRows(db)).toHaveLength(1);
    expect(await deliver()).toEqual([]);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
  });

  it('a grant replaced before its expiry was announced is not announced; a new grant resets the marker', async () => {
    await store.apply([grant()]);
    // Replaced by an unlimited grant before the sweep saw the first one pass.
    clock.advance(20_000);
    await store.apply([grant({ consentAt: T0 + 15_000, validUntil: null })]);
    await deliver();
    clock.advance(60_000);
    expect((await sweeper.runOnce()).flatMap((r) => r.expired)).toEqual([]);
    expect(await expiredRows(db)).toEqual([]);
    expect(await deliver()).toEqual([]);

    // A grant with a new expiry: announced once when that one passes, and again for a later grant.
    const sent: WebhookPayload[] = [];
    await store.apply([grant({ consentAt: T0 + 90_000, validUntil: T0 + 100_000 })]);
    sent.push(...(await deliver()));
    clock.advance(30_000);
    await sweeper.runOnce();
    sent.push(...(await deliver()));
    await store.apply([grant({ consentAt: T0 + 120_000, validUntil: T0 + 130_000 })]);
    sent.push(...(await deliver()));
    clock.advance(30_000);
    await sweeper.runOnce();
    await sweeper.runOnce();
    sent.push(...(await deliver()));
    expect((await expiredRows(db)).map((r) => r.validUntil)).toEqual([T0 + 100_000, T0 + 130_000]);
    expect(sent.map((p) => [p.type, p.items[0]?.validUntil])).toEqual([
      ['consent.changed', T0 + 100_000],
      ['consent.expired', T0 + 100_000],
      ['consent.changed', T0 + 130_000],
      ['consent.expired', T0 + 130_000],
    ]);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
  });

  it('a denial, an unlimited grant, a future expiry and a grant written already expired are not announced', async () => {
    // The seed's third CSV row (bloomreach-tracking-consent.txt): valid_until before the consent's own time.
    const history = grant({ item: 'push_notification', consentAt: 1522152855000, validUntil: 1522112345000, source: 'import' });
    await store.apply([grant({ item: 'a', action: 'reject', validUntil: null }), grant({ item: 'b', validUntil: null }), grant({ item: 'c', validUntil: T0 + 3_600_000 }), history]);
    await deliver();
    clock.advance(60_000);
    const results = await sweeper.runOnce();
    expect(results.flatMap((r) => r.expired)).toEqual([]);
    expect(results.reduce((n, r) => n + r.alreadyExpired, 0)).toBe(1);
    expect(await expiredRows(db)).toEqual([]);
    expect(await deliver()).toEqual([]);
    // Marked: not even looked at again.
    expect((await sweeper.runOnce()).map((r) => r.alreadyExpired)).toEqual([0]);
  });

  it('sweeps in bounded batches until none is full, oldest expiry first', async () => {
    await store.apply(Array.from({ length: 5 }, (_, i) => grant({ subject: { type: 'visitor', id: `v${i}` }, validUntil: T0 + 1000 * (5 - i) })));
    clock.advance(10_000);
    const small = createExpirySweeper({ db, clock, intervalMs: 60_000, batchSize: 2 });
    const results = await small.runOnce();
    expect(results.map((r) => r.expired.length)).toEqual([2, 2, 1]);
    expect(results.flatMap((r) => r.expired.map((e) => e.subject.id))).toEqual(['v4', 'v3', 'v2', 'v1', 'v0']);
    expect(await expiredRows(db)).toHaveLength(5);
    expect(await deliver()).toHaveLength(10);
  });

  it('sweepers running at once (two instances on PostgreSQL) announce each expiry once', async () => {
    await store.apply([grant({ item: 'x' }), grant({ item: 'y' }), grant({ subject: { type: 'visitor', id: 'v9' } })]);
    await deliver();
    clock.advance(60_000);
    // A second instance: its own connection pool on the same database (SQLite in memory has one).
    const other = engine.name === 'postgres' ? await openDb(engine.url()) : db;
    try {
      const results = await Promise.all([sweepExpired(db, { now: clock.now(), limit: 50 }), sweepExpired(other, { now: clock.now(), limit: 50 }), sweepExpired(db, { now: clock.now(), limit: 50 })]);
      expect(results.flatMap((r) => r.expired)).toHaveLength(3);
    } finally {
      if (other !== db) await other.close();
    }
    expect(await expiredRows(db)).toHaveLength(3);
    expect((await deliver()).map((p) => p.type)).toEqual(['consent.expired', 'consent.expired', 'consent.expired']);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
  });

  it('a lost marker announces nothing twice: the dedup key (site, subject, item, valid_until) holds', async () => {
    await store.apply([grant()]);
    await deliver();
    clock.advance(60_000);
    await sweeper.runOnce();
    expect(await deliver()).toHaveLength(1);
    await db.run('UPDATE consent_items SET expiry_noted_at = NULL');
    const again = (await sweeper.runOnce()).flatMap((r) => r.expired);
    expect(again).toMatchObject([{ item: 'newsletter', auditSeq: null }]);
    expect(await expiredRows(db)).toHaveLength(1);
    expect(await deliver()).toEqual([]);
    // Marked again: the next sweep does not even find it.
    expect((await sweeper.runOnce()).flatMap((r) => r.expired)).toEqual([]);
  });

  it('linked subjects: every subject of the profile is reported for cache invalidation, and sees the new version', async () => {
    await store.apply([grant({ links: [{ type: 'visitor', id: 'v1' }] })]);
    const before = await store.read(SITE, { type: 'visitor', id: 'v1' });
    clock.advance(60_000);
    const [result] = await sweeper.runOnce();
    expect(result!.subjects).toEqual([
      { siteId: SITE, subjectKey: 'user:u1' },
      { siteId: SITE, subjectKey: 'visitor:v1' },
    ]);
    expect((await store.read(SITE, { type: 'visitor', id: 'v1' }))!.version).toBeGreaterThan(before!.version);
  });

  it.runIf(engine.name === 'postgres')('other instances hear of it: the sweep NOTIFYs every subject of the profile on commit', async () => {
    await store.apply([grant({ links: [{ type: 'visitor', id: 'v1' }] })]);
    const heard: string[] = [];
    let done: () => void = () => undefined;
    const both = new Promise<void>((resolve) => (done = resolve));
    const feed = await startChangeFeed(db, (site, key) => {
      heard.push(`${site}/${key}`);
      if (heard.length === 2) done();
    });
    closers.push(() => feed.close());
    clock.advance(60_000);
    await sweeper.runOnce();
    await both;
    expect(heard.sort()).toEqual(['shop/user:u1', 'shop/visitor:v1']);
  });

  it("a subscription's item filter applies to consent.expired as to consent.changed", async () => {
    const r2 = await startReceiver('/hooks');
    closers.push(() => r2.close());
    await createSubscription(db, { siteId: SITE, url: r2.url, filters: { items: ['analytics'] } }, { guard: GUARD, clock });
    await store.apply([grant()]);
    clock.advance(60_000);
    await sweeper.runOnce();
    await worker.runOnce();
    expect(receiver.hits.map((h) => (JSON.parse(h.body) as WebhookPayload).type)).toEqual(['consent.changed', 'consent.expired']);
    expect(r2.hits).toEqual([]);
  });
});

forEachEngine('expiry events in the app', (engine) => {
  it('the consent API starts the sweeper on its clock (api.expiry.sweepMs) and stops it on shutdown', async () => {
    const db = await engine.open();
    const clock = new FakeClock(T0);
    const config = testConfig({ site: { id: SITE, dataControlMode: 'opt-in', categories: { analytics: {} } }, api: { expiry: { sweepMs: 5000 } } });
    const tw = await startTagwarden(config, undefined, { db, consentClock: clock, webhooks: false });
    try {
      const key = (await createApiKey(db, { label: 'w', scopes: ['consent:write', 'consent:read'] })).key;
      const push = await fetch(`${tw.url}/api/v1/consent/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ customer_ids: { registered: 'u-exp' }, action: 'accept', category: 'analytics', timestamp: (T0 - 1000) / 1000, valid_until: (T0 + 2000) / 1000 }),
      });
      expect(push.status).toBe(200);
      clock.advance(5000);
    } finally {
      // Shutdown waits for the sweep the clock started.
      await tw.close();
    }
    try {
      expect((await expiredRows(db)).map((r) => [r.subjectKey, r.item, r.consentAt])).toEqual([['user:u-exp', 'analytics', T0 + 2000]]);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    } finally {
      await db.close();
    }
  });
});
