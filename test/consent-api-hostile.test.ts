import { describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';
import { testConfig } from './helpers.ts';

/**
 * Issue 13, CookieBoss and hostile input on /api/v1, on both engines: the verify answer in
 * CookieBoss's names (seed cookieboss-consent-verification-api.txt), unstated categories absent,
 * per-minute rate limits, nesting and encoding bounds on JSON bodies, own-property look-ups,
 * and failed authentication throttled per client address.
 */
const ADMIN_KEY = 'admin-key-of-the-test-0123456789';

forEachEngine('consent API: CookieBoss verify and hostile input', (engine) => {
  const clock = new FakeClock(Date.UTC(2026, 2, 8, 12, 0, 0));
  const ctx = consentApiHarness(
    engine,
    {
      site: { id: 'site_1', dataControlMode: 'opt-in', categories: { necessary: {}, analytics: {}, advertising: {}, functional: {}, newsletter: {} } },
      api: { rateLimit: { perMinute: 1000 }, authFailures: { perMinute: 30, burst: 10 } },
      debug: { explain: true, adminKey: ADMIN_KEY },
    },
    { deps: { consentClock: clock }, keys: ['consent:write', 'consent:read', 'admin'] },
  );
  const { call } = ctx;

  const get = (path: string, key = ctx.reader) => call('GET', path, key);
  const post = (path: string, body: string | Uint8Array, key = ctx.writer) => call('POST', path, key, body);

  describe('verify answers in CookieBoss names', () => {
    it("the seed's integration reads categories.marketing from the site's advertising; categories never stated are absent", async () => {
      const pushed = await post('/api/v1/consent', JSON.stringify({ visitorId: 'cb-v1', categories: { analytics: true, advertising: true, functional: false }, timestamp: '2026-03-08T12:00:00Z', geoCountry: 'DE' }));
      expect(pushed.status).toBe(200);
      const v = await get('/api/v1/public/sites/site_1/consent/verify?visitor_id=cb-v1');
      expect(v.status).toBe(200);
      // `necessary` and `newsletter` were never stated: absent, never false.
      expect(v.body).toEqual({ hasConsent: true, categories: { analytics: true, marketing: true, functional: false }, consentedAt: '2026-03-08T12:00:00.000Z', geoCountry: 'DE' });
      // The seed's Node.js integration example, as written.
      const { hasConsent, categories } = v.body as { hasConsent: boolean; categories: Record<string, boolean> | null };
      expect(hasConsent && categories?.marketing).toBe(true);
      for (const value of Object.values(v.body.categories as object)) expect(typeof value).toBe('boolean');
    });

    it("a denial answers false; the seed's 'no consent' answer is unchanged", async () => {
      await post('/api/v1/consent', JSON.stringify({ visitorId: 'cb-v2', categories: { advertising: false, necessary: true } }));
      const v = await get('/api/v1/public/sites/site_1/consent/verify?visitor_id=cb-v2');
      expect(v.body.categories).toEqual({ marketing: false, necessary: true });
      const { hasConsent, categories } = v.body as { hasConsent: boolean; categories: Record<string, boolean> | null };
      expect(Boolean(hasConsent && categories?.marketing)).toBe(false);
      expect((await get('/api/v1/public/sites/site_1/consent/verify?visitor_id=nobody')).body).toEqual({ hasConsent: false, categories: null, consentedAt: null, geoCountry: null });
    });
  });

  describe('own-property look-ups', () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];

    it.each(names)('check?category=%s on a subject with and without a record: a normal answer', async (name) => {
      for (const subject of ['cb-v1', 'never-seen']) {
        const r = await get(`/api/v1/subjects/visitor/${subject}/check?category=${encodeURIComponent(name)}`);
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ item: name, consented: false, state: 'unknown' });
        expect(r.body.since).toBeUndefined();
      }
      const ref = await get(`/api/v1/subjects/visitor/cb-v1/check?reference=${encodeURIComponent(name)}`);
      expect(ref.status).toBe(200);
      expect(ref.body).toMatchObject({ state: 'unknown' });
    });

    it('items named like Object.prototype members are stored and answered as themselves', async () => {
      const events = JSON.stringify(names.map((category) => ({ customer_ids: { cookie: 'proto-v' }, properties: { action: 'accept', category, valid_until: 'unlimited' }, timestamp: 1_772_971_200 })));
      const stored = await post('/api/v1/consent/events', events);
      expect(stored.status).toBe(200);
      for (const name of names) {
        const r = await get(`/api/v1/subjects/visitor/proto-v/check?category=${encodeURIComponent(name)}`);
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ item: name, consented: true, state: 'granted', validUntil: 'unlimited' });
      }
      // An item the subject does not have is still unknown, not an inherited value.
      expect((await get('/api/v1/subjects/visitor/proto-v/check?category=status')).body).toMatchObject({ state: 'unknown' });
      const record = await get('/api/v1/subjects/visitor/proto-v');
      expect(record.status).toBe(200);
      expect(Object.keys(record.body.items as object).sort()).toEqual([...names].sort());
      // A push: the same names as categories; `__proto__` cannot be a key of the parsed map, so it is refused, never dropped silently.
      const pushed = await post('/api/v1/consent', JSON.stringify({ visitorId: 'proto-p', categories: { constructor: true, toString: false, hasOwnProperty: true } }));
      expect(pushed.status).toBe(200);
      expect((await get('/api/v1/subjects/visitor/proto-p/check?category=toString')).body).toMatchObject({ state: 'denied' });
      expect((await get('/api/v1/subjects/visitor/proto-p/check?category=constructor')).body).toMatchObject({ state: 'granted' });
      const refused = await post('/api/v1/consent', '{"visitorId":"proto-p","categories":{"__proto__":true}}');
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('TW_ERR_VALIDATION');
      const v = await get('/api/v1/public/sites/site_1/consent/verify?visitor_id=proto-v');
      expect(v.status).toBe(200);
      expect(v.body).toMatchObject({ hasConsent: true, categories: {} });
    });
  });

  describe('JSON bodies: depth, size in members, encoding', () => {
    const deep = (n: number) => `{"visitorId":"d","x":${'['.repeat(n)}${']'.repeat(n)}}`;

    it.each([
      ['/api/v1/consent', 'writer'],
      ['/api/v1/consent/events', 'writer'],
      ['/api/v1/webhooks', 'admin'],
      ['/api/v1/deliveries/dead/replay', 'admin'],
    ])('%s: nested 5,000 deep is a 400 naming the depth, not a 500', async (path, who) => {
      const r = await post(path, deep(5000), who === 'admin' ? ctx.admin : ctx.writer);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'TW_ERR_VALIDATION', details: { issues: [{ path: 'depth' }], limit: 64 } });
      expect(r.body.error.message).toMatch(/nested deeper than 64/);
    });

    it('/debug/explain: the same bound', async () => {
      const r = await call('POST', '/debug/explain', undefined, deep(100_000), 'application/json', { 'x-admin-key': ADMIN_KEY });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('TW_ERR_VALIDATION');
    });

    it('brackets inside strings do not count; 64 levels pass', async () => {
      const r = await post('/api/v1/consent', JSON.stringify({ visitorId: 'd1', categories: { analytics: true }, message: '['.repeat(4000) + '"\\' }));
      expect(r.status).toBe(200);
      // The top object and 63 levels under `x`: 64 in all.
      expect((await post('/api/v1/consent', `{"visitorId":"d2","categories":{"analytics":true},"x":${'['.repeat(63)}${']'.repeat(63)}}`)).status).toBe(200);
      expect((await post('/api/v1/consent', `{"visitorId":"d2","categories":{"analytics":true},"x":${'['.repeat(64)}${']'.repeat(64)}}`)).status).toBe(400);
    });

    it('more than 100,000 members is a 400', async () => {
      const r = await post('/api/v1/consent/events', `[${Array.from({ length: 100_001 }, () => '0').join(',')}]`);
      expect(r.status).toBe(400);
      expect(r.body.error.details.issues[0].path).toBe('members');
    });

    it('a body that is not UTF-8 is a 400, never read with U+FFFD', async () => {
      const latin1 = Buffer.from('{"visitorId":"caf\xe9","categories":{"analytics":true}}', 'latin1');
      const r = await post('/api/v1/consent', latin1);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'TW_ERR_MALFORMED_BODY', message: 'the body is not valid UTF-8' });
      expect((await get('/api/v1/subjects/visitor/caf%EF%BF%BD')).status).toBe(404);
      // The same text in UTF-8 is fine.
      expect((await post('/api/v1/consent', Buffer.from('{"visitorId":"caf\u00e9","categories":{"analytics":true}}', 'utf8'))).status).toBe(200);
    });
  });

  describe('failed authentication', () => {
    it('wrong API keys from one address: 401 up to the burst, then 429 with Retry-After; good keys still work', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 15; i++) statuses.push((await get('/api/v1/subjects/visitor/cb-v1', `tw_${String(i).padStart(43, 'z')}`)).status);
      expect(statuses).toEqual([...Array<number>(10).fill(401), ...Array<number>(5).fill(429)]);
      const limited = await get('/api/v1/subjects/visitor/cb-v1', 'tw_wrong');
      expect(limited.headers.get('retry-after')).toBe('2');
      expect(limited.body.error.code).toBe('TW_ERR_RATE_LIMITED');
      // The reader's key was looked up before: it passes from the same address.
      expect((await get('/api/v1/subjects/visitor/cb-v1')).status).toBe(200);
      // Wrong admin keys: a budget of their own (a separate throttle), the same rule.
      const admins: number[] = [];
      for (let i = 0; i < 12; i++) admins.push((await call('POST', '/debug/explain', undefined, '{}', 'application/json', { 'x-admin-key': `wrong-${i}` })).status);
      expect(admins).toEqual([...Array<number>(10).fill(401), 429, 429]);
      clock.advance(2_000);
      expect((await get('/api/v1/subjects/visitor/cb-v1', 'tw_wrong_again')).status).toBe(401);
      clock.advance(60_000);
    });
  });
});

forEachEngine('consent API: per-minute rate limit', (engine) => {
  const clock = new FakeClock(Date.UTC(2026, 2, 8));
  const ctx = consentApiHarness(engine, { site: { id: 's' }, api: { rateLimit: { perMinute: 100 } } }, { deps: { consentClock: clock }, keys: ['consent:read'] });

  it("CookieBoss's Pro plan, 100 per minute: the 101st in the minute is 429 with Retry-After", async () => {
    const verify = () => ctx.call('GET', '/api/v1/public/sites/s/consent/verify?visitor_id=v', ctx.reader);
    for (let i = 0; i < 100; i++) expect((await verify()).status).toBe(200);
    const limited = await verify();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body.error).toMatchObject({ code: 'TW_ERR_RATE_LIMITED', details: { retryAfterSeconds: 1 } });
    clock.advance(600);
    expect((await verify()).status).toBe(200);
    expect((await verify()).status).toBe(429);
  });

  it('config: perSecond and perMinute together are refused', () => {
    expect(() => testConfig({ site: { id: 's' }, api: { rateLimit: { perSecond: 5, perMinute: 100 } } })).toThrow(/perSecond or perMinute/);
  });
});
