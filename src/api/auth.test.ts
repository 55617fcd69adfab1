import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { errorHandler } from '../http/errors.ts';
import type { Db } from '../store/db.ts';
import { apiKeyGuard, createKeyCache, failureKeyOf, presentedKey, requireScope, type AuthDeps } from './auth.ts';
import { requireAdminKey } from './admin-auth.ts';
import { createApiKey, findApiKey, revokeApiKey, type Scope } from './keys.ts';
import { createFailureThrottle, createRateLimiter } from './rate-limit.ts';
import { systemClock } from '../lib/clock.ts';
import { FakeClock } from '../lib/fake-clock.ts';

/** One route per scope (`/consent-read`, …), each answering the key id the guard set. */
function appWith(deps: AuthDeps): express.Express {
  const app = express();
  const guard = apiKeyGuard(deps);
  for (const scope of ['consent:write', 'consent:read', 'audit:read', 'admin'] as Scope[]) {
    app.get(`/${scope.replace(':', '-')}`, guard(scope), (_req, res) => {
      res.json({ apiKeyId: res.locals.apiKeyId as unknown });
    });
  }
  app.use(errorHandler(pino({ level: 'silent' })));
  return app;
}

describe('presentedKey', () => {
  it.each<[Record<string, string>, string | undefined]>([
    [{}, undefined],
    [{ 'x-api-key': 'tw_a' }, 'tw_a'],
    [{ authorization: 'Bearer tw_b' }, 'tw_b'],
    [{ authorization: 'bearer tw_b' }, 'tw_b'],
    [{ authorization: 'Basic dXNlcjpwdw==' }, undefined],
    [{ authorization: 'Bearer ' }, undefined],
    [{ authorization: 'Bearer a b' }, undefined],
    [{ 'x-api-key': '' }, undefined],
    [{ 'x-api-key': 'tw_a', authorization: 'Bearer tw_b' }, 'tw_a'],
  ])('%j → %s', (headers, expected) => {
    expect(presentedKey(headers)).toBe(expected);
  });
});

describe('failureKeyOf', () => {
  it.each<[string | undefined, string]>([
    [undefined, 'unknown'],
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('%s → %s', (address, key) => {
    expect(failureKeyOf(address)).toBe(key);
  });
});

describe('admin key: failed attempts throttled per address', () => {
  it('wrong keys → 401 up to the burst, then 429 with Retry-After (the right key too) for that address only', async () => {
    const clock = new FakeClock(0);
    const app = express();
    app.set('trust proxy', 1);
    app.get('/debug', requireAdminKey('a'.repeat(32), { failures: createFailureThrottle({ perMinute: 30, burst: 10, clock }), trustProxyHops: 1 }), (_req, res) => {
      res.sendStatus(204);
    });
    app.use(errorHandler(pino({ level: 'silent' })));
    const from = (ip: string, key?: string) => {
      const r = request(app).get('/debug').set('X-Forwarded-For', ip);
      return key === undefined ? r : r.set('X-Admin-Key', key);
    };
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await from('198.51.100.1', `wrong-${i}`)).status);
    expect(statuses.slice(0, 10)).toEqual(Array<number>(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array<number>(30).fill(429));
    const limited = await from('198.51.100.1', 'a'.repeat(32));
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('2');
    // Requests without a key are not guesses and do not count.
    for (let i = 0; i < 20; i++) expect((await from('198.51.100.2')).status).toBe(401);
    expect((await from('198.51.100.2', 'wrong')).status).toBe(401);
    expect((await from('198.51.100.3', 'a'.repeat(32))).status).toBe(204);
    clock.advance(2_000);
    expect((await from('198.51.100.1', 'a'.repeat(32))).status).toBe(204);
  });
});

forEachEngine('API key auth', (engine) => {
  let db: Db;
  let t: number;
  const clock = { ...systemClock, now: () => t };
  beforeEach(async () => {
    db = await engine.open();
    t = 1_000_000;
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await db.close();
  });

  it('401 with WWW-Authenticate: Bearer when no key is sent', async () => {
    const app = appWith({ keys: createKeyCache(db, { clock }) });
    const res = await request(app).get('/consent-read');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(res.body.error.code).toBe('TW_ERR_UNAUTHORIZED');
    expect((await request(app).get('/consent-read').set('Authorization', 'Basic dXNlcjpwdw==')).status).toBe(401);
  });

  it('401 for an unknown key', async () => {
    await createApiKey(db, { label: 'crm', scopes: ['admin'] });
    const app = appWith({ keys: createKeyCache(db, { clock }) });
    const res = await request(app).get('/consent-read').set('X-API-Key', `tw_${'A'.repeat(43)}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b.*invalid_token/);
    expect(res.body.error.code).toBe('TW_ERR_UNAUTHORIZED');
  });

  it('200 with the right scope, by X-API-Key and by Authorization: Bearer; res.locals.apiKeyId is the public id', async () => {
    const { id, key } = await createApiKey(db, { label: 'crm', scopes: ['consent:write', 'consent:read'] });
    const app = appWith({ keys: createKeyCache(db, { clock }) });
    for (const [h, v] of [
      ['X-API-Key', key],
      ['Authorization', `Bearer ${key}`],
    ] as const) {
      const res = await request(app).get('/consent-write').set(h, v);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ apiKeyId: id });
      expect((await request(app).get('/consent-read').set(h, v)).status).toBe(200);
    }
  });

  it('403 for a valid key without the scope', async () => {
    const { key } = await createApiKey(db, { label: 'reader', scopes: ['consent:read'] });
    const app = appWith({ keys: createKeyCache(db, { clock }) });
    for (const scope of ['consent:write', 'audit:read', 'admin']) {
      const res = await request(app).get(`/${scope.replace(':', '-')}`).set('Authorization', `Bearer ${key}`);
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'TW_ERR_FORBIDDEN', details: { required: scope } });
    }
  });

  it('admin implies every scope', async () => {
    const { key } = await createApiKey(db, { label: 'ops', scopes: ['admin'] });
    const app = appWith({ keys: createKeyCache(db, { clock }) });
    for (const scope of ['consent:write', 'consent:read', 'audit:read', 'admin']) {
      expect((await request(app).get(`/${scope.replace(':', '-')}`).set('X-API-Key', key)).status).toBe(200);
    }
  });

  it('401 for a revoked key: at once with a fresh cache, within the cache TTL on a running server', async () => {
    const { id, key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    const keys = createKeyCache(db, { clock, ttlMs: 10_000 });
    const app = appWith({ keys });
    expect((await request(app).get('/consent-read').set('X-API-Key', key)).status).toBe(200);
    await revokeApiKey(db, id);
    expect((await request(appWith({ keys: createKeyCache(db, { clock }) })).get('/consent-read').set('X-API-Key', key)).status).toBe(401);
    // The running server's cache still holds the look-up (documented) ...
    t += 9_999;
    expect((await request(app).get('/consent-read').set('X-API-Key', key)).status).toBe(200);
    // ... until the TTL passes.
    t += 1;
    expect((await request(app).get('/consent-read').set('X-API-Key', key)).status).toBe(401);
    // forget() makes an in-process revocation immediate.
    const other = await createApiKey(db, { label: 'x', scopes: ['consent:read'] });
    expect((await request(app).get('/consent-read').set('X-API-Key', other.key)).status).toBe(200);
    await revokeApiKey(db, other.id);
    keys.forget();
    expect((await request(app).get('/consent-read').set('X-API-Key', other.key)).status).toBe(401);
  });

  it('caches look-ups: a busy client does not hit the database per request', async () => {
    const { key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    const get = vi.spyOn(db, 'get');
    const app = appWith({ keys: createKeyCache(db, { clock, ttlMs: 10_000 }) });
    await Promise.all(Array.from({ length: 10 }, () => request(app).get('/consent-read').set('X-API-Key', key).expect(200)));
    for (let i = 0; i < 5; i++) await request(app).get('/consent-read').set('X-API-Key', 'tw_wrong').expect(401);
    expect(get).toHaveBeenCalledTimes(2);
    t += 10_000;
    await request(app).get('/consent-read').set('X-API-Key', key).expect(200);
    expect(get).toHaveBeenCalledTimes(3);
  });

  it('a store failure is a 500, and is not cached', async () => {
    const { key } = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    const app = appWith({ keys: createKeyCache(db, { clock }) });
    vi.spyOn(db, 'get').mockRejectedValueOnce(new Error('connection lost'));
    const res = await request(app).get('/consent-read').set('X-API-Key', key);
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('TW_ERR_INTERNAL');
    expect((await request(app).get('/consent-read').set('X-API-Key', key)).status).toBe(200);
  });

  it('429 with Retry-After after the burst, per key; recovers as time passes; unauthenticated requests get 401, never 429', async () => {
    const a = await createApiKey(db, { label: 'a', scopes: ['consent:read'] });
    const b = await createApiKey(db, { label: 'b', scopes: ['consent:read'] });
    const app = appWith({ keys: createKeyCache(db, { clock }), limiter: createRateLimiter({ perSecond: 0.5, burst: 3, clock }) });
    const hit = (key: string) => request(app).get('/consent-read').set('X-API-Key', key);
    for (let i = 0; i < 3; i++) expect((await hit(a.key)).status).toBe(200);
    const limited = await hit(a.key);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('2');
    expect(limited.body.error).toMatchObject({ code: 'TW_ERR_RATE_LIMITED', details: { retryAfterSeconds: 2 } });
    expect((await hit(b.key)).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await request(app).get('/consent-read')).status).toBe(401);
    for (let i = 0; i < 10; i++) expect((await hit('tw_unknown')).status).toBe(401);
    t += 1_000;
    expect((await hit(a.key)).headers['retry-after']).toBe('1');
    t += 1_000;
    expect((await hit(a.key)).status).toBe(200);
    expect((await hit(a.key)).status).toBe(429);
  });

  it('requireScope works on its own with the same deps', async () => {
    const { key } = await createApiKey(db, { label: 'a', scopes: ['audit:read'] });
    const app = express();
    app.get('/audit', requireScope('audit:read', { keys: createKeyCache(db) }), (_req, res) => {
      res.sendStatus(204);
    });
    app.use(errorHandler(pino({ level: 'silent' })));
    expect((await request(app).get('/audit').set('Authorization', `Bearer ${key}`)).status).toBe(204);
  });

  it('40 wrong keys from one address: 429 after the burst, database look-ups bounded; another address still gets 401, a good key still works', async () => {
    const good = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    const fake = new FakeClock(t);
    let lookups = 0;
    const find: typeof findApiKey = (q, presented, now) => {
      lookups++;
      return findApiKey(q, presented, now);
    };
    const app = appWith({ keys: createKeyCache(db, { clock: fake, find }), failures: createFailureThrottle({ perMinute: 30, burst: 10, clock: fake }), trustProxyHops: 1 });
    // Express computes req.ip the same way; the guard reads src/http/client-ip.ts with the same hops.
    app.set('trust proxy', 1);
    const from = (ip: string, key: string) => request(app).get('/consent-read').set('X-Forwarded-For', ip).set('X-API-Key', key);
    const attacker = '198.51.100.7';
    const randomKey = (i: number) => `tw_${String(i).padStart(43, 'x')}`;
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await from(attacker, randomKey(i))).status);
    expect(statuses.slice(0, 10)).toEqual(Array<number>(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array<number>(30).fill(429));
    expect(lookups).toBe(10);
    const limited = await from(attacker, randomKey(99));
    expect(limited.headers['retry-after']).toBe('2');
    expect(limited.body.error).toMatchObject({ code: 'TW_ERR_RATE_LIMITED', details: { retryAfterSeconds: 2 } });
    expect(lookups).toBe(10);
    // Another address: its own budget; a good key: unaffected.
    expect((await from('203.0.113.9', randomKey(100))).status).toBe(401);
    expect((await from('203.0.113.9', good.key)).status).toBe(200);
    // A good key already looked up passes even from the throttled address (a client sharing the attacker's NAT).
    expect((await from(attacker, good.key)).status).toBe(200);
    // The negative cache: a key that just failed is answered without a look-up.
    const before = lookups;
    for (let i = 0; i < 5; i++) expect((await from('203.0.113.10', randomKey(100))).status).toBe(401);
    expect(lookups).toBe(before);
    // The budget comes back at perMinute: one more guess every 2 s.
    fake.advance(2_000);
    expect((await from(attacker, randomKey(200))).status).toBe(401);
    expect((await from(attacker, randomKey(201))).status).toBe(429);
  });

  it('a flood of wrong keys does not evict good keys from the cache', async () => {
    const good = await createApiKey(db, { label: 'crm', scopes: ['consent:read'] });
    let lookups = 0;
    const find: typeof findApiKey = (q, presented, now) => {
      lookups++;
      return findApiKey(q, presented, now);
    };
    const keys = createKeyCache(db, { clock, find, max: 4, negativeMax: 4 });
    expect(await keys.lookup(good.key)).toMatchObject({ id: good.id });
    for (let i = 0; i < 50; i++) expect(await keys.lookup(`tw_${String(i).padStart(43, 'y')}`)).toBeUndefined();
    const n = lookups;
    expect(keys.cached?.(good.key)).toMatchObject({ id: good.id });
    expect(await keys.lookup(good.key)).toMatchObject({ id: good.id });
    expect(lookups).toBe(n);
  });
});
