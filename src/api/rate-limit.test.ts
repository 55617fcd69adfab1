import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '../http/errors.ts';
import { createFailureThrottle, createRateLimiter, createSharedRateLimiter, rateLimitByKey, rateLimitFromConfig, retryAfterSeconds, takeToken, type Bucket, type RateLimit } from './rate-limit.ts';
import { systemClock } from '../lib/clock.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import type { Db } from '../store/db.ts';
import { openDb } from '../store/open.ts';

/** Runs requests at the given times (ms) through one bucket; true = allowed, else the Retry-After seconds. */
function run(limit: RateLimit, times: number[]): (true | number)[] {
  let bucket: Bucket | undefined;
  return times.map((t) => {
    const r = takeToken(bucket, t, limit);
    bucket = r.bucket;
    return r.allowed ? true : retryAfterSeconds(r.retryAfterMs);
  });
}

describe('token bucket', () => {
  it.each<[string, RateLimit, number[], (true | number)[]]>([
    ['a new bucket is full: burst at once, then refused', { perSecond: 1, burst: 3 }, [0, 0, 0, 0], [true, true, true, 1]],
    ['refills at perSecond', { perSecond: 1, burst: 3 }, [0, 0, 0, 999, 1000, 1000], [true, true, true, 1, true, 1]],
    ['never holds more than burst', { perSecond: 10, burst: 2 }, [0, 0, 60_000, 60_000, 60_000], [true, true, true, true, 1]],
    ['burst 1 is a plain rate', { perSecond: 2, burst: 1 }, [0, 100, 500, 600, 1000], [true, 1, true, 1, true]],
    ['slow rates: Retry-After is the whole seconds to the next token, rounded up', { perSecond: 0.1, burst: 1 }, [0, 0, 1000, 9999, 10_000], [true, 10, 9, 1, true]],
    ['Retry-After rounds 2.5 s up to 3', { perSecond: 0.4, burst: 1 }, [0, 0], [true, 3]],
    ['a fast rate still answers at least 1 s', { perSecond: 1000, burst: 1 }, [0, 0, 1], [true, 1, true]],
    ['fractional refills accumulate', { perSecond: 3, burst: 1 }, [0, 333, 334, 667, 668], [true, 1, true, 1, true]],
    ['a clock going backwards refills nothing', { perSecond: 1, burst: 1 }, [5000, 1000, 5999, 6000], [true, 1, 1, true]],
  ])('%s', (_name, limit, times, expected) => {
    expect(run(limit, times)).toEqual(expected);
  });

  it('is pure: the input bucket is not changed', () => {
    const bucket = { tokens: 1, at: 0 };
    takeToken(bucket, 10, { perSecond: 1, burst: 1 });
    expect(bucket).toEqual({ tokens: 1, at: 0 });
  });

  it('retryAfterSeconds rounds up, minimum 1', () => {
    expect([0, 1, 999, 1000, 1001, 2500].map(retryAfterSeconds)).toEqual([1, 1, 1, 1, 2, 3]);
  });
});

describe('rate limiter', () => {
  it('keeps one bucket per key', () => {
    let t = 0;
    const limiter = createRateLimiter({ perSecond: 1, burst: 2, clock: { ...systemClock, now: () => t } });
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([undefined, undefined, { retryAfterSeconds: 1 }]);
    expect(limiter.take('b')).toBeUndefined();
    t = 1000;
    expect(limiter.take('a')).toBeUndefined();
    expect(limiter.take('a')).toEqual({ retryAfterSeconds: 1 });
  });

  it('rejects a nonsensical limit', () => {
    expect(() => createRateLimiter({ perSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => createRateLimiter({ perSecond: 1, burst: 0 })).toThrow(RangeError);
  });

  it('middleware: 429 with Retry-After and a JSON body per key; requests without a key id pass', async () => {
    let t = 0;
    const limiter = createRateLimiter({ perSecond: 0.5, burst: 1, clock: { ...systemClock, now: () => t } });
    const app = express();
    app.use((req, res, next) => {
      const id = req.headers['x-key-id'];
      if (typeof id === 'string') res.locals.apiKeyId = id;
      next();
    });
    app.use(rateLimitByKey(limiter));
    app.get('/', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(errorHandler(pino({ level: 'silent' })));

    expect((await request(app).get('/').set('x-key-id', 'k1')).status).toBe(200);
    const limited = await request(app).get('/').set('x-key-id', 'k1');
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('2');
    expect(limited.body).toEqual({ error: { code: 'TW_ERR_RATE_LIMITED', message: expect.any(String), details: { retryAfterSeconds: 2 } } });
    expect((await request(app).get('/').set('x-key-id', 'k2')).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await request(app).get('/')).status).toBe(200);
    t = 2000;
    expect((await request(app).get('/').set('x-key-id', 'k1')).status).toBe(200);
  });
});

describe('per-minute limits (CookieBoss plans, seed cookieboss-consent-verification-api.txt)', () => {
  it('100 per minute: 100 at once, the 101st in the minute is 429 with Retry-After 1 (60 / 100 s to the next token)', () => {
    const clock = new FakeClock(0);
    const limiter = createRateLimiter({ ...rateLimitFromConfig({ perMinute: 100 }), clock });
    for (let i = 0; i < 100; i++) expect(limiter.take('k')).toBeUndefined();
    expect(limiter.take('k')).toEqual({ retryAfterSeconds: 1 });
    clock.advance(599);
    expect(limiter.take('k')).toEqual({ retryAfterSeconds: 1 });
    clock.advance(1);
    expect(limiter.take('k')).toBeUndefined();
    expect(limiter.take('k')).toEqual({ retryAfterSeconds: 1 });
    // Half a minute later, half a minute's allowance is back.
    clock.advance(30_000);
    for (let i = 0; i < 50; i++) expect(limiter.take('k')).toBeUndefined();
    expect(limiter.take('k')).toBeDefined();
  });

  it('Retry-After is whole seconds to the next token, ≤ 60 for any per-minute rate', () => {
    expect(run({ perMinute: 1, burst: 1 }, [0, 0, 59_001, 60_000])).toEqual([true, 60, 1, true]);
    expect(run({ perMinute: 7, burst: 1 }, [0, 0])).toEqual([true, 9]); // 60/7 = 8.57 s
    expect(run({ perMinute: 1000, burst: 2 }, [0, 0, 0, 60])).toEqual([true, true, 1, true]);
  });

  it('a client keeping to N requests in any 60 s window is never refused', () => {
    const clock = new FakeClock(0);
    const limiter = createRateLimiter({ ...rateLimitFromConfig({ perMinute: 100 }), clock });
    // 100 at the start of each minute, for ten minutes: each window of 60 s holds at most 100.
    for (let minute = 0; minute < 10; minute++) {
      for (let i = 0; i < 100; i++) expect(limiter.take('k')).toBeUndefined();
      clock.advance(60_000);
    }
    // Evenly spread: one every 600 ms.
    for (let i = 0; i < 1000; i++) {
      expect(limiter.take('e')).toBeUndefined();
      clock.advance(600);
    }
  });

  it('config: perMinute takes burst = perMinute by default; perSecond keeps 50/100', () => {
    expect(rateLimitFromConfig({ perMinute: 500 })).toEqual({ perMinute: 500, burst: 500 });
    expect(rateLimitFromConfig({ perMinute: 500, burst: 20 })).toEqual({ perMinute: 500, burst: 20 });
    expect(rateLimitFromConfig({})).toEqual({ perSecond: 50, burst: 100 });
    expect(rateLimitFromConfig({ perSecond: 5 })).toEqual({ perSecond: 5, burst: 100 });
    expect(() => createRateLimiter({ perMinute: 0, burst: 1 })).toThrow(RangeError);
  });
});

describe('failure throttle', () => {
  it('only failures take tokens; a blocked key waits for one token; keys are apart', () => {
    const clock = new FakeClock(0);
    const t = createFailureThrottle({ perMinute: 30, burst: 3, clock });
    expect(t.blocked('a')).toBeUndefined();
    for (let i = 0; i < 3; i++) {
      expect(t.blocked('a')).toBeUndefined();
      t.fail('a');
    }
    expect(t.blocked('a')).toEqual({ retryAfterSeconds: 2 });
    expect(t.blocked('a')).toEqual({ retryAfterSeconds: 2 });
    expect(t.blocked('b')).toBeUndefined();
    clock.advance(1_000);
    expect(t.blocked('a')).toEqual({ retryAfterSeconds: 1 });
    clock.advance(1_000);
    expect(t.blocked('a')).toBeUndefined();
    t.fail('a');
    expect(t.blocked('a')).toEqual({ retryAfterSeconds: 2 });
  });
});

describe('the fleet-wide limiter (api.rateLimit.scope: fleet)', () => {
  it('keeps its buckets in the store: two limiters on one store share them, per key', async () => {
    const db = await openDb('sqlite::memory:');
    try {
      const clock = new FakeClock(0);
      const o = { perSecond: 1, burst: 3, clock, db, name: 'api', onError: () => undefined };
      const a = createSharedRateLimiter(o);
      const b = createSharedRateLimiter(o);
      const results = [await a.take('k'), await b.take('k'), await a.take('k'), await b.take('k'), await a.take('other')];
      expect(results).toEqual([undefined, undefined, undefined, { retryAfterSeconds: 1 }, undefined]);
      clock.advance(1_000);
      expect(await b.take('k')).toBeUndefined();
      expect(await a.take('k')).toEqual({ retryAfterSeconds: 1 });
    } finally {
      await db.close();
    }
  });

  it('fails open when the store fails, and says so', async () => {
    const broken = { transaction: () => Promise.reject(new Error('connection refused')) } as unknown as Db;
    const errors: unknown[] = [];
    const limiter = createSharedRateLimiter({ perSecond: 1, burst: 1, db: broken, name: 'api', onError: (e) => errors.push(e) });
    expect(await limiter.take('k')).toBeUndefined();
    expect(await limiter.take('k')).toBeUndefined();
    expect(errors).toHaveLength(2);
  });
});
