import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { errorHandler } from '../http/errors.ts';
import type { Db } from '../store/db.ts';
import { apiKeyGuard, createKeyCache, presentedKey, requireScope, type AuthDeps } from './auth.ts';
import { createApiKey, revokeApiKey, type Scope } from './keys.ts';
import { createRateLimiter } from './rate-limit.ts';
import { systemClock } from '../lib/clock.ts';

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
});
