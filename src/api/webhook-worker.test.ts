import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Db } from '../store/db.ts';
import { openDb } from '../store/open.ts';
import { enqueueForChange, listDeliveries } from '../store/webhooks.ts';
import { createSubscription } from './webhook-subscriptions.ts';
import { systemClock } from '../lib/clock.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { createWebhookWorker, webhookBackoffMs, type WebhookWorker, type WebhookWorkerOptions } from './webhook-worker.ts';

describe('webhookBackoffMs', () => {
  const b = { baseMs: 1000, maxMs: 30_000 };
  it('is a full-jitter pick under a doubling, capped ceiling', () => {
    expect([1, 2, 3, 4, 5, 6, 20].map((a) => webhookBackoffMs(a, b, () => 0.999999))).toEqual([999, 1999, 3999, 7999, 15999, 29999, 29999]);
    expect(webhookBackoffMs(3, b, () => 0)).toBe(0);
    expect(webhookBackoffMs(2, b, () => 0.5)).toBe(1000);
  });
  it('tolerates a misbehaving random source', () => {
    expect(webhookBackoffMs(1, b, () => NaN)).toBe(0);
    expect(webhookBackoffMs(1, b, () => -3)).toBe(0);
    expect(webhookBackoffMs(1, b, () => 7)).toBe(1000);
  });
});

describe('createWebhookWorker', () => {
  let db: Db;
  let clock: number;
  const cleanup: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    db = await openDb('sqlite::memory:');
    clock = 1_000_000;
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    await db.close();
  });

  async function receiver(respond: (res: ServerResponse) => void): Promise<{ url: string; hits: number[] }> {
    const hits: number[] = [];
    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hits.push(Date.now());
        respond(res);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/h`, hits };
  }

  function worker(over: Partial<WebhookWorkerOptions> = {}): WebhookWorker {
    const w = createWebhookWorker({ db, guard: { allowPrivate: true }, clock: { ...systemClock, now: () => clock }, random: () => 0.999, timeoutMs: 2_000, ...over });
    cleanup.push(() => w.stop());
    return w;
  }

  let site = 0;
  /** A subscription on a site of its own, and one change enqueued for it. */
  async function setup(url: string): Promise<{ id: string; secret: string }> {
    const siteId = `s${++site}`;
    const sub = await createSubscription(db, { siteId, url }, { guard: { allowPrivate: true } });
    await db.transaction((tx) => enqueueForChange(tx, { siteId, subject: { type: 'user', id: 'u' }, version: 1, items: [], recordChanged: true, at: clock }));
    return sub;
  }

  it('never throws out of runOnce: a failing database goes to onError', async () => {
    const errors: unknown[] = [];
    const broken = { engine: 'sqlite', transaction: () => Promise.reject(new Error('db down')) } as unknown as Db;
    const w = createWebhookWorker({ db: broken, onError: (e) => errors.push(e) });
    cleanup.push(() => w.stop());
    await expect(w.runOnce()).resolves.toEqual({ claimed: 0, delivered: 0, retried: 0, failed: 0, gone: 0 });
    expect(errors).toHaveLength(1);
    // A throwing onError is contained too.
    const w2 = createWebhookWorker({ db: broken, onError: () => { throw new Error('bad handler'); } });
    cleanup.push(() => w2.stop());
    await expect(w2.runOnce()).resolves.toMatchObject({ claimed: 0 });
  });

  it('start() polls and delivers; stop() ends the loop', async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const sub = await setup(r.url);
    const fake = new FakeClock(clock);
    const w = worker({ clock: fake, pollMs: 20 });
    w.start();
    w.start();
    // One poll armed however often start() is called, due at once.
    expect(fake.pendingTimers).toBe(1);
    fake.advance(0);
    await vi.waitFor(() => expect(r.hits).toHaveLength(1), { timeout: 5_000 });
    // The round done, the next poll is armed.
    await vi.waitFor(() => expect(fake.pendingTimers).toBe(1), { timeout: 5_000 });
    await w.stop();
    expect(fake.pendingTimers).toBe(0);
    await db.transaction((tx) => enqueueForChange(tx, { siteId: `s${site}`, subject: { type: 'user', id: 'u' }, version: 2, items: [], recordChanged: true, at: clock }));
    // Well past many poll intervals: no timer was left to fire, so the new change stays undelivered.
    fake.advance(60_000);
    expect(fake.pendingTimers).toBe(0);
    expect(r.hits).toHaveLength(1);
    expect((await listDeliveries(db, sub.id)).map((d) => d.status).sort()).toEqual(['delivered', 'pending']);
  });

  it('a stored URL the guard now refuses fails at once, without a request', async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const sub = await setup(r.url);
    expect((await worker({ guard: {} }).runOnce()).failed).toBe(1);
    expect(r.hits).toHaveLength(0);
    expect((await listDeliveries(db, sub.id))[0]).toMatchObject({ status: 'failed', lastError: 'url refused: address 127.0.0.1 is loopback' });
  });

  it('a host resolving to a refused address at send time fails that delivery at once; nothing else is disabled', async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const port = new URL(r.url).port;
    // One subscription whose host name resolves to loopback when the worker connects (DNS
    // rebinding, or a record changed after the subscription was made), one to a receiver allowed by name.
    const bad = await setup(`http://hooks.example.test:${port}/h`);
    const good = await setup(r.url);
    const lookups: string[] = [];
    const guard = {
      allowHosts: ['127.0.0.1'],
      lookup: ((hostname, _o, callback) => {
        lookups.push(hostname);
        callback(null, [{ address: '127.0.0.1', family: 4 }]);
      }) satisfies NonNullable<WebhookWorkerOptions['guard']>['lookup'],
    };
    const fake = new FakeClock(clock);
    const w = worker({ guard, clock: fake, maxAttempts: 12 });
    expect(await w.runOnce()).toMatchObject({ claimed: 2, delivered: 1, failed: 1, retried: 0 });
    expect(lookups).toEqual(['hooks.example.test']);
    expect(r.hits).toHaveLength(1);
    const [refused] = await listDeliveries(db, bad.id);
    expect(refused).toMatchObject({ status: 'failed', attempts: 1, lastError: 'url refused at send time: hooks.example.test resolves to 127.0.0.1 (loopback)' });
    expect((await listDeliveries(db, good.id))[0]).toMatchObject({ status: 'delivered' });
    // Nothing is due later: no retry was scheduled.
    fake.advance(48 * 3_600_000);
    clock += 48 * 3_600_000;
    expect((await w.runOnce()).claimed).toBe(0);
    // The subscription stays enabled: the next change is enqueued and tried again.
    const subs = await db.all<{ id: string; disabled_at: number | null }>('SELECT id, disabled_at FROM webhook_subscriptions ORDER BY id');
    expect(subs.every((x) => x.disabled_at === null)).toBe(true);
    await db.transaction((tx) => enqueueForChange(tx, { siteId: `s${site - 1}`, subject: { type: 'user', id: 'u' }, version: 2, items: [], recordChanged: true, at: clock }));
    expect(await w.runOnce()).toMatchObject({ claimed: 1, failed: 1 });
  });

  it('a Retry-After beyond maxRetryAfterMs ends the delivery', async () => {
    const r = await receiver((res) => res.writeHead(503, { 'retry-after': '86400' }).end());
    const sub = await setup(r.url);
    expect((await worker({ maxRetryAfterMs: 3_600_000 }).runOnce()).failed).toBe(1);
    expect((await listDeliveries(db, sub.id))[0]!.lastError).toMatch(/Retry-After beyond/);
  });

  it('Retry-After is ignored on statuses other than 429 and 503', async () => {
    const r = await receiver((res) => res.writeHead(500, { 'retry-after': '600' }).end());
    const sub = await setup(r.url);
    await worker({ random: () => 0 }).runOnce();
    expect((await listDeliveries(db, sub.id))[0]).toMatchObject({ status: 'pending', nextAttemptAt: clock });
  });

  it('timeouts and refused connections are retried; secrets echoed back are masked', async () => {
    const slow = await receiver(() => undefined);
    const s1 = await setup(slow.url);
    expect((await worker({ timeoutMs: 200 }).runOnce()).retried).toBe(1);
    expect((await listDeliveries(db, s1.id))[0]!.lastError).toBe('timeout');

    const closedPort = await receiver(() => undefined);
    await cleanup.pop()!();
    const s2 = await setup(closedPort.url);
    await worker().runOnce();
    expect((await listDeliveries(db, s2.id))[0]!.lastError).toBe('network_ECONNREFUSED');

    let secret = '';
    const echo = await receiver((res) => res.writeHead(400).end(`bad secret ${secret}`));
    const s3 = await setup(echo.url);
    secret = s3.secret;
    await worker().runOnce();
    const [d] = await listDeliveries(db, s3.id);
    expect(d!.lastError).toBe('status_400: bad secret [secret]');
  });

  it('refuses a lock shorter than the timeout, and maxAttempts < 1', () => {
    expect(() => createWebhookWorker({ db, timeoutMs: 10_000, lockMs: 5_000 })).toThrow(/lockMs/);
    expect(() => createWebhookWorker({ db, maxAttempts: 0 })).toThrow(/maxAttempts/);
  });

  it('a delivery that cannot be signed (corrupt secret) is counted as an attempt and ends', async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    const sub = await setup(r.url);
    await db.run("UPDATE webhook_subscriptions SET secret = 'whsec_!!' WHERE id = ?", [sub.id]);
    const errors: unknown[] = [];
    const w = worker({ maxAttempts: 2, onError: (e) => errors.push(e) });
    expect((await w.runOnce()).retried).toBe(1);
    clock += 3_600_000;
    expect((await w.runOnce()).failed).toBe(1);
    expect(r.hits).toHaveLength(0);
    expect(errors).toHaveLength(2);
    expect((await listDeliveries(db, sub.id))[0]).toMatchObject({ status: 'failed', lastError: 'internal_error (after 2 attempts)' });
  });

  it('errors in onAttempt do not escape', async () => {
    const r = await receiver((res) => res.writeHead(200).end());
    await setup(r.url);
    const errors: unknown[] = [];
    const w = worker({
      onAttempt: () => {
        throw new Error('observer');
      },
      onError: (e) => errors.push(e),
    });
    await expect(w.runOnce()).resolves.toMatchObject({ claimed: 1 });
    expect(errors).toHaveLength(1);
  });
});
