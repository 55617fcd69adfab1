/**
 * Consent-change webhooks end to end: a consent write enqueues (inside its transaction), the
 * worker claims, signs and POSTs to a real receiver on 127.0.0.1 (allowed through the guard's
 * allowlist), and records the outcome. Time is a fake clock driven by the test; runOnce is called
 * by hand. Both engines.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { LookupAll, UrlGuardOptions } from '../src/api/url-guard.ts';
import { verifyWebhook } from '../src/api/webhook-sign.ts';
import { createWebhookWorker, type WebhookWorker, type WebhookWorkerOptions } from '../src/api/webhook-worker.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createConsentStore, type ConsentStore } from '../src/store/consent.ts';
import type { Db } from '../src/store/db.ts';
import type { ConsentInput } from '../src/store/types.ts';
import { claimDue, enqueueForChange, getSubscription, listDeliveries, type WebhookPayload } from '../src/store/webhooks.ts';
import { createSubscription } from '../src/api/webhook-subscriptions.ts';
import { forEachEngine } from './engines.ts';
import { startReceiver, type Receiver } from './webhook-receiver.ts';

const SITE = 'shop';
const T0 = 1_750_000_000_000;
const GUARD: UrlGuardOptions = { allowHosts: ['127.0.0.1'] };

function consent(over: Partial<ConsentInput> = {}): ConsentInput {
  return { siteId: SITE, subject: { type: 'visitor', id: 'v1' }, action: 'accept', item: 'analytics', consentAt: T0 - 1000, validUntil: null, source: 'push', valid: true, payloadHash: 'p'.repeat(64), ...over };
}

forEachEngine('consent-change webhooks', (engine) => {
  let db: Db;
  let clock: number;
  let store: ConsentStore;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    db = await engine.open();
    clock = T0;
    store = createConsentStore(db, { clock: { ...systemClock, now: () => clock }, onChange: enqueueForChange });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await db.close();
  });

  async function receiver(respond?: (res: ServerResponse, n: number) => void): Promise<Receiver> {
    const r = await startReceiver('/hooks/consent', respond);
    closers.push(() => r.close());
    return r;
  }

  function worker(over: Partial<WebhookWorkerOptions> = {}): WebhookWorker {
    const w = createWebhookWorker({ db, guard: GUARD, clock: { ...systemClock, now: () => clock }, random: () => 0.5, backoff: { baseMs: 10_000, maxMs: 600_000 }, timeoutMs: 5_000, lockMs: 30_000, ...over });
    closers.push(() => w.stop());
    return w;
  }

  async function subscribe(url: string, guard: UrlGuardOptions = GUARD) {
    return createSubscription(db, { siteId: SITE, url, filters: {} }, { guard, clock: { ...systemClock, now: () => clock } });
  }

  it('delivers a consent change as a signed POST with the subject, the change and its version', async () => {
    const r = await receiver();
    const { id: subId, secret } = await subscribe(r.url);
    await store.apply([consent()]);
    const summary = await worker().runOnce();
    expect(summary).toEqual({ claimed: 1, delivered: 1, retried: 0, failed: 0, gone: 0 });

    expect(r.hits).toHaveLength(1);
    const hit = r.hits[0]!;
    expect(hit.path).toBe('/hooks/consent');
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['webhook-timestamp']).toBe(String(T0 / 1000));
    expect(verifyWebhook(secret, hit.headers, hit.body, { nowSec: T0 / 1000 })).toMatchObject({ ok: true });
    expect(verifyWebhook(secret, hit.headers, hit.body.replace('granted', 'denied'), { nowSec: T0 / 1000 }).ok).toBe(false);

    const payload = JSON.parse(hit.body) as WebhookPayload;
    const read = await store.read(SITE, { type: 'visitor', id: 'v1' });
    expect(payload).toEqual({
      id: hit.headers['webhook-id'],
      type: 'consent.changed',
      siteId: SITE,
      subject: { type: 'visitor', id: 'v1' },
      version: read!.version,
      items: [{ item: 'analytics', status: 'granted', consentAt: T0 - 1000, validUntil: null, source: 'push', expired: false }],
      recordChanged: false,
      at: T0,
    });
    const [d] = await listDeliveries(db, subId);
    expect(d).toMatchObject({ id: payload.id, status: 'delivered', attempts: 1, lastStatus: 204 });
  });

  it('retries after a 500 with backoff, and succeeds with the same webhook-id', async () => {
    const r = await receiver((res, n) => res.writeHead(n === 0 ? 500 : 200).end(n === 0 ? 'oops' : 'ok'));
    const { id: subId, secret } = await subscribe(r.url);
    await store.apply([consent()]);
    const w = worker();

    expect((await w.runOnce()).retried).toBe(1);
    const [d] = await listDeliveries(db, subId);
    // Full jitter: random 0.5 of the first ceiling (baseMs).
    expect(d).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 500, lastError: 'status_500: oops', nextAttemptAt: T0 + 5_000 });

    clock = T0 + 4_999;
    expect((await w.runOnce()).claimed).toBe(0);
    clock = T0 + 5_000;
    expect((await w.runOnce()).delivered).toBe(1);

    expect(r.hits).toHaveLength(2);
    const [first, second] = r.hits;
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(second!.body).toBe(first!.body);
    expect(second!.headers['webhook-timestamp']).toBe(String((T0 + 5_000) / 1000));
    expect(verifyWebhook(secret, second!.headers, second!.body, { nowSec: (T0 + 5_000) / 1000 }).ok).toBe(true);
    expect((await listDeliveries(db, subId))[0]).toMatchObject({ status: 'delivered', attempts: 2, lastStatus: 200, lastError: null });
  });

  it('honours Retry-After (seconds on 429, HTTP-date on 503): no attempt before it', async () => {
    const date = new Date(T0 + 300_000).toUTCString();
    const r = await receiver((res, n) => {
      if (n === 0) res.writeHead(429, { 'retry-after': '120' }).end();
      else if (n === 1) res.writeHead(503, { 'retry-after': date }).end();
      else res.writeHead(200).end();
    });
    const { id: subId } = await subscribe(r.url);
    await store.apply([consent()]);
    // The backoff alone would allow an immediate retry: only Retry-After holds it back.
    const w = worker({ random: () => 0 });

    await w.runOnce();
    expect((await listDeliveries(db, subId))[0]).toMatchObject({ nextAttemptAt: T0 + 120_000, lastStatus: 429 });
    for (const t of [T0 + 1, T0 + 60_000, T0 + 119_999]) {
      clock = t;
      await w.runOnce();
    }
    expect(r.hits).toHaveLength(1);

    clock = T0 + 120_000;
    await w.runOnce();
    expect(r.hits).toHaveLength(2);
    expect((await listDeliveries(db, subId))[0]).toMatchObject({ nextAttemptAt: T0 + 300_000, lastStatus: 503 });
    clock = T0 + 299_000;
    await w.runOnce();
    expect(r.hits).toHaveLength(2);

    clock = T0 + 300_000;
    expect((await w.runOnce()).delivered).toBe(1);
    expect(r.hits).toHaveLength(3);
  });

  it('410 Gone stops the delivery and disables the subscription', async () => {
    const r = await receiver((res) => res.writeHead(410).end());
    const { id: subId } = await subscribe(r.url);
    await store.apply([consent()]);
    const w = worker();
    expect((await w.runOnce()).gone).toBe(1);

    expect(await getSubscription(db, SITE, subId)).toMatchObject({ disabledAt: T0, disabledReason: 'gone' });
    expect((await listDeliveries(db, subId))[0]).toMatchObject({ status: 'gone', lastStatus: 410 });
    await store.apply([consent({ action: 'reject', consentAt: T0 })]);
    clock = T0 + 86_400_000;
    expect((await w.runOnce()).claimed).toBe(0);
    expect(r.hits).toHaveLength(1);
    expect(await listDeliveries(db, subId)).toHaveLength(1);
  });

  it('does not follow a redirect: a 3xx is a failed attempt', async () => {
    const target = await receiver();
    const r = await receiver((res) => res.writeHead(307, { location: target.url }).end());
    const { id: subId } = await subscribe(r.url);
    await store.apply([consent()]);
    expect((await worker().runOnce()).retried).toBe(1);

    expect(r.hits).toHaveLength(1);
    expect(target.hits).toHaveLength(0);
    const [d] = await listDeliveries(db, subId);
    expect(d).toMatchObject({ status: 'pending', lastStatus: 307 });
    expect(d!.lastError).toMatch(/redirects are not followed/);
  });

  it('a claimed delivery whose worker crashed is delivered again once its lock lapses (at least once)', async () => {
    const r = await receiver();
    const { id: subId } = await subscribe(r.url);
    await store.apply([consent()]);
    // A worker claims and dies before sending or recording anything.
    const [crashed] = await claimDue(db, { now: clock, limit: 10, lockMs: 30_000 });
    expect(crashed).toBeDefined();

    const w = worker();
    clock = T0 + 29_999;
    expect((await w.runOnce()).claimed).toBe(0);
    expect(r.hits).toHaveLength(0);

    clock = T0 + 30_000;
    expect((await w.runOnce()).delivered).toBe(1);
    expect(r.hits).toHaveLength(1);
    expect(r.hits[0]!.headers['webhook-id']).toBe(crashed!.id);
    expect((await listDeliveries(db, subId))[0]).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('gives up after maxAttempts', async () => {
    const r = await receiver((res) => res.writeHead(500).end());
    const { id: subId } = await subscribe(r.url);
    await store.apply([consent()]);
    const w = worker({ maxAttempts: 3, random: () => 0 });
    for (let i = 0; i < 5; i++) await w.runOnce();
    expect(r.hits).toHaveLength(3);
    const [d] = await listDeliveries(db, subId);
    expect(d).toMatchObject({ status: 'failed', attempts: 3, lastStatus: 500 });
    expect(d!.lastError).toMatch(/after 3 attempts/);
  });

  it('checks the resolved address at send time: a name that rebinds to loopback is not reached', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    // Accepted at subscription time (a public-looking name, not resolved then) ...
    const { id: subId } = await subscribe(`http://hooks.rebind.test:${port}/x`, {});
    await store.apply([consent()]);
    // ... but it now resolves to 127.0.0.1.
    const lookup: LookupAll = (_host, _opts, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]);
    // A refusal cannot pass on a retry: that delivery fails at once, with the reason (issue 13).
    expect(await worker({ guard: { lookup } }).runOnce()).toMatchObject({ failed: 1, retried: 0 });
    expect(r.hits).toHaveLength(0);
    expect((await listDeliveries(db, subId))[0]).toMatchObject({ status: 'failed', lastError: 'url refused at send time: hooks.rebind.test resolves to 127.0.0.1 (loopback)' });

    // The subscription stays enabled: allowed explicitly, the next change to the same name is delivered.
    clock = T0 + 3_600_000;
    await store.apply([consent({ action: 'reject', consentAt: T0 })]);
    expect((await worker({ guard: { lookup, allowHosts: ['hooks.rebind.test'] } }).runOnce()).delivered).toBe(1);
    expect(r.hits).toHaveLength(1);
  });
});
