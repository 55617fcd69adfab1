import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { openDb } from '../src/store/open.ts';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/** Issue 15: the dashboard at /ui, its login, session cookie, CSRF token and files (docs/ui.md). */
const ADMIN_KEY = 'admin-key-0123456789abcdef';
const SECRET = 'whsec-do-not-show-9f8e7d6c';

async function dashboardApp(clock: FakeClock, extra: Record<string, unknown> = {}) {
  const db = await openDb('sqlite::memory:');
  const vendor = await startVendor();
  const tw = await startTagwarden(
    testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
      destinations: [
        // The secret also inside a setting that is not secret: masked there too.
        { id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook?k=${SECRET}`, secret: SECRET }, consent: { categories: ['analytics'] } },
        // A credential in the URL's query that no setting declares (audit, issue 15): masked by its name.
        { id: 'off', template: 'webhook', enabled: false, settings: { url: `${vendor.url}/off?token=QUERYSECRET_zz9`, secret: 'another-secret-value-1234' } },
      ],
      api: { rateLimit: { perSecond: 1000, burst: 1000 } },
      receipts: { enabled: true },
      debug: { adminKey: ADMIN_KEY, explain: true },
      ...extra,
    }),
    undefined,
    { db, consentClock: clock },
  );
  return {
    tw,
    close: async () => {
      await tw.close();
      await vendor.close();
      await db.close();
    },
  };
}

/** The `tw_ui=…` pair of a Set-Cookie answer, and the header itself. */
function sessionCookieOf(res: request.Response): { pair: string; header: string } {
  const header = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('tw_ui='));
  expect(header).toBeDefined();
  return { pair: header!.split(';', 1)[0]!, header: header! };
}

describe('dashboard auth', () => {
  const clock = new FakeClock(Date.now());
  let app: Awaited<ReturnType<typeof dashboardApp>>;
  let url: string;
  let cookie: string;
  let csrf: string;

  beforeAll(async () => {
    app = await dashboardApp(clock);
    url = app.tw.url;
  });
  afterAll(async () => {
    await app.close();
  });

  it('a wrong key is refused: the form back to the page, JSON with 401; no cookie', async () => {
    const form = await request(url).post('/ui/login').type('form').send({ key: 'not-the-admin-key-at-all' });
    expect(form.status).toBe(303);
    expect(form.headers.location).toBe('/ui?login=failed');
    expect(form.headers['set-cookie']).toBeUndefined();
    const json = await request(url).post('/ui/login').send({ key: 'not-the-admin-key-at-all' });
    expect(json.status).toBe(401);
    expect(json.body.error.code).toBe('TW_ERR_UNAUTHORIZED');
    expect(json.headers['set-cookie']).toBeUndefined();
  });

  it('the right key → 303 to /ui with an HttpOnly, SameSite=Strict session cookie (not Secure over plain http)', async () => {
    const res = await request(url).post('/ui/login').type('form').send({ key: ADMIN_KEY });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/ui');
    const c = sessionCookieOf(res);
    expect(c.header).toMatch(/^tw_ui=v1\.\d+\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/);
    cookie = c.pair;
    const s = await request(url).get('/ui/api/session').set('Cookie', cookie);
    expect(s.status).toBe(200);
    expect(s.body.expiresAt).toBe(clock.now() + 28_800_000);
    csrf = s.body.csrf;
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.headers['cache-control']).toBe('no-store');
    // Another site's page cannot read it: no CORS on /ui.
    const cross = await request(url).get('/ui/api/session').set('Cookie', cookie).set('Origin', 'https://evil.example');
    expect(cross.headers['access-control-allow-origin']).toBeUndefined();
    expect((await request(url).options('/ui/api/session').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'GET')).headers['access-control-allow-origin']).toBeUndefined();
    // JSON login works the same way.
    expect(sessionCookieOf(await request(url).post('/ui/login').send({ key: ADMIN_KEY }).expect(303)).pair).toMatch(/^tw_ui=v1\./);
  });

  it('no session, or a forged one: 401 from /ui/api/session', async () => {
    expect((await request(url).get('/ui/api/session')).status).toBe(401);
    const forged = cookie.replace(/\.[^.]+$/, '.' + 'A'.repeat(43));
    expect((await request(url).get('/ui/api/session').set('Cookie', forged)).status).toBe(401);
    // Another expiry with the same MAC: the MAC covers it.
    const later = cookie.replace(/^tw_ui=v1\.(\d+)\./, (_m, exp: string) => `tw_ui=v1.${Number(exp) + 1}.`);
    expect((await request(url).get('/ui/api/session').set('Cookie', later)).status).toBe(401);
  });

  it('the CSRF token is required with the cookie, GET included: missing or wrong → 403', async () => {
    for (const path of ['/ui/api/destinations', '/api/v1/receipts?visitorId=v1']) {
      const missing = await request(url).get(path).set('Cookie', cookie);
      expect(missing.status, path).toBe(403);
      expect(missing.body.error.code).toBe('TW_ERR_FORBIDDEN');
      expect(missing.body.error.details).toEqual({ reason: 'csrf' });
      expect((await request(url).get(path).set('Cookie', cookie).set('X-CSRF-Token', 'A'.repeat(43))).status, path).toBe(403);
      expect((await request(url).get(path).set('Cookie', cookie).set('X-CSRF-Token', csrf)).status, path).toBe(200);
    }
  });

  it('the session grants the admin API (/api/v1/receipts); without a session the API wants a key', async () => {
    const ok = await request(url).get('/api/v1/receipts?visitorId=v1').set('Cookie', cookie).set('X-CSRF-Token', csrf);
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveProperty('receipts');
    const none = await request(url).get('/api/v1/receipts?visitorId=v1').set('X-CSRF-Token', csrf);
    expect(none.status).toBe(401);
    expect((await request(url).get('/ui/api/overview')).status).toBe(401);
  });

  it('an unsafe request from another origin is refused, with the session or at the login', async () => {
    const consent = { visitorId: 'v-origin', categories: { analytics: true } };
    const foreign = await request(url).post('/api/v1/consent').set('Cookie', cookie).set('X-CSRF-Token', csrf).set('Origin', 'https://evil.example').send(consent);
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.details).toEqual({ reason: 'origin' });
    const crossSite = await request(url).post('/api/v1/consent').set('Cookie', cookie).set('X-CSRF-Token', csrf).set('Sec-Fetch-Site', 'cross-site').send(consent);
    expect(crossSite.status).toBe(403);
    const same = await request(url).post('/api/v1/consent').set('Cookie', cookie).set('X-CSRF-Token', csrf).set('Origin', url).send(consent);
    expect(same.status).toBe(200);
    const login = await request(url).post('/ui/login').set('Origin', 'https://evil.example').type('form').send({ key: ADMIN_KEY });
    expect(login.status).toBe(403);
    expect(login.headers['set-cookie']).toBeUndefined();
    expect((await request(url).post('/ui/login').set('Origin', 'null').type('form').send({ key: ADMIN_KEY })).status).toBe(403);
    expect((await request(url).post('/ui/login').set('Sec-Fetch-Site', 'same-site').type('form').send({ key: ADMIN_KEY })).status).toBe(403);
    // A browser's same-origin form post may say `Origin: null`; its Sec-Fetch-Site is believed.
    const sameOrigin = await request(url).post('/ui/login').set('Origin', 'null').set('Sec-Fetch-Site', 'same-origin').type('form').send({ key: ADMIN_KEY });
    expect(sameOrigin.status).toBe(303);
    expect(sameOrigin.headers.location).toBe('/ui');
  });

  it('the page: CSP allowing exactly its import map by hash, no framing, no sniffing, not cached', async () => {
    const res = await request(url).get('/ui');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = readFileSync(new URL('../ui/index.html', import.meta.url), 'utf8');
    expect(res.text).toBe(html);
    const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const hash = createHash('sha256').update(map).digest('base64');
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}'`);
    for (const part of ["default-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'"]) expect(csp).toContain(part);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect((await request(url).get('/ui/')).status).toBe(200);
  });

  it('vendor files come from node_modules with their content type; the page files from ui/', async () => {
    const require = createRequire(import.meta.url);
    const dist = (pkg: string, file: string): string => new URL(file, `file://${require.resolve(pkg)}`).pathname;
    const cases: [string, string, string][] = [
      ['/ui/vendor/preact.mjs', require.resolve('preact'), 'text/javascript; charset=utf-8'],
      ['/ui/vendor/preact-hooks.mjs', require.resolve('preact/hooks'), 'text/javascript; charset=utf-8'],
      ['/ui/vendor/htm.mjs', dist('htm', 'htm.mjs'), 'text/javascript; charset=utf-8'],
      ['/ui/vendor/uplot.mjs', dist('uplot', 'uPlot.esm.js'), 'text/javascript; charset=utf-8'],
      ['/ui/vendor/uplot.css', dist('uplot', 'uPlot.min.css'), 'text/css; charset=utf-8'],
    ];
    for (const [path, file, type] of cases) {
      const res = await request(url).get(path).buffer(true).parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      });
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type'], path).toBe(type);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect((res.body as Buffer).equals(readFileSync(file)), path).toBe(true);
      // ES modules, not the CommonJS builds.
      if (type.startsWith('text/javascript')) expect((res.body as Buffer).toString(), path).toMatch(/\bexport\b/);
    }
    const app = await request(url).get('/ui/assets/app.js');
    expect(app.status).toBe(200);
    expect(app.headers['content-type']).toBe('text/javascript; charset=utf-8');
  });

  it('no path reaches a file outside the lists', async () => {
    const paths = [
      '/ui/assets/../package.json',
      '/ui/assets/%2e%2e/package.json',
      '/ui/assets/..%2fpackage.json',
      '/ui/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/ui/assets/..%5c..%5cpackage.json',
      '/ui/vendor/../../package.json',
      '/ui/vendor/preact/package.json',
      '/ui/vendor/%2e%2e/%2e%2e/package.json',
      '/ui/vendor/preact.mjs/../../../package.json',
      '/ui/assets/index.html/..%2f..%2fpackage.json',
      '/ui/assets//etc/passwd',
      '/ui/assets/%2Fetc%2Fpasswd',
      '/ui/assets/',
      '/ui/vendor/',
    ];
    for (const path of paths) {
      const res = await request(url).get(path);
      expect(res.status, path).not.toBe(200);
      expect(res.text, path).not.toContain('"dependencies"');
      expect(res.text, path).not.toContain('root:');
    }
    expect((await request(url).post('/ui/assets/app.js')).status).toBe(404);
  });

  it('destinations as configured, every secret masked: no secret value anywhere in the body', async () => {
    const res = await request(url).get('/ui/api/destinations').set('Cookie', cookie).set('X-CSRF-Token', csrf);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(SECRET);
    expect(res.text).not.toContain('another-secret-value-1234');
    expect(res.text).not.toContain('QUERYSECRET_zz9');
    expect(res.body).toEqual([
      expect.objectContaining({ id: 'hook', template: 'webhook', templateVersion: 1, enabled: true, categories: ['analytics'], settings: { url: expect.stringContaining('/hook?k=[secret]'), secret: '••••' } }),
      expect.objectContaining({ id: 'off', enabled: false, disabledReason: 'enabled: false', settings: { url: expect.stringContaining('/off?token=[secret]'), secret: '••••' } }),
    ]);
  });

  it('recent decisions: ids only, newest first', async () => {
    const hit = await request(url).post('/v1/track').send({ messageId: 'm-ui-1', anonymousId: 'v-ui', event: 'Signed Up', properties: { email: 'a@example.com' }, context: { consent: { categoryPreferences: { analytics: true } } } });
    expect(hit.status).toBe(200);
    await app.tw.app.flush(5000);
    const res = await request(url).get('/ui/api/decisions?limit=5').set('Cookie', cookie).set('X-CSRF-Token', csrf);
    expect(res.status).toBe(200);
    expect(res.body[0]).toEqual({ at: clock.now(), messageId: 'm-ui-1', destinationId: 'hook', visitorId: 'v-ui', outcome: 'forward', reason: 'consent_granted:analytics', eventType: 'track', eventName: 'Signed Up' });
    expect(res.text).not.toContain('a@example.com');
    expect((await request(url).get('/ui/api/decisions?limit=100000').set('Cookie', cookie).set('X-CSRF-Token', csrf)).status).toBe(400);
  });

  it('logout: 204, the cookie cleared, the session refused from then on', async () => {
    expect((await request(url).post('/ui/logout').set('Cookie', cookie)).status).toBe(403);
    const res = await request(url).post('/ui/logout').set('Cookie', cookie).set('X-CSRF-Token', csrf).set('Origin', url);
    expect(res.status).toBe(204);
    expect(sessionCookieOf(res).header).toBe('tw_ui=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    expect((await request(url).get('/ui/api/session').set('Cookie', cookie)).status).toBe(401);
    expect((await request(url).get('/api/v1/receipts?visitorId=v1').set('Cookie', cookie).set('X-CSRF-Token', csrf)).status).toBe(401);
    expect((await request(url).post('/ui/logout').set('Cookie', cookie).set('X-CSRF-Token', csrf)).status).toBe(401);
  });

  it('a session expires after ui.sessionTtlSeconds', async () => {
    const c = sessionCookieOf(await request(url).post('/ui/login').send({ key: ADMIN_KEY })).pair;
    expect((await request(url).get('/ui/api/session').set('Cookie', c)).status).toBe(200);
    clock.advance(28_800_000);
    expect((await request(url).get('/ui/api/session').set('Cookie', c)).status).toBe(401);
  });
});

describe('dashboard login throttle', () => {
  it('wrong keys take from the admin key budget shared with /debug: then 429 / ?login=throttled, the right key too', async () => {
    const clock = new FakeClock(Date.now());
    const app = await dashboardApp(clock, { api: { rateLimit: { perSecond: 1000, burst: 1000 }, authFailures: { perMinute: 1, burst: 3 } } });
    try {
      const url = app.tw.url;
      for (let i = 0; i < 2; i++) expect((await request(url).post('/ui/login').send({ key: `wrong-key-number-${i}-xxxxxx` })).status).toBe(401);
      // The third guess on /debug: one budget for the one admin key.
      expect((await request(url).post('/debug/explain').set('X-Admin-Key', 'wrong-key-on-debug-xxxxxx').send({ type: 'track', event: 'x' })).status).toBe(401);
      const json = await request(url).post('/ui/login').send({ key: ADMIN_KEY });
      expect(json.status).toBe(429);
      expect(json.body.error.code).toBe('TW_ERR_RATE_LIMITED');
      expect(Number(json.headers['retry-after'])).toBeGreaterThan(0);
      const form = await request(url).post('/ui/login').type('form').send({ key: ADMIN_KEY });
      expect(form.status).toBe(303);
      expect(form.headers.location).toBe('/ui?login=throttled');
      expect(form.headers['set-cookie']).toBeUndefined();
      clock.advance(60_000);
      expect((await request(url).post('/ui/login').type('form').send({ key: ADMIN_KEY })).headers.location).toBe('/ui');
    } finally {
      await app.close();
    }
  });
});

describe('dashboard off', () => {
  it('without debug.adminKey, or with ui.enabled false, /ui is 404', async () => {
    for (const over of [{ debug: {} }, { ui: { enabled: false } }]) {
      const app = await dashboardApp(new FakeClock(Date.now()), over);
      try {
        expect((await request(app.tw.url).get('/ui')).status).toBe(404);
        expect((await request(app.tw.url).post('/ui/login').send({ key: ADMIN_KEY })).status).toBe(404);
        expect((await request(app.tw.url).get('/ui/vendor/preact.mjs')).status).toBe(404);
      } finally {
        await app.close();
      }
    }
  });
});
