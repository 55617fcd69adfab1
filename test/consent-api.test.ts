import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verifyWebhook } from '../src/api/webhook-sign.ts';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { closeServer, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * The consent API over HTTP, the same contract on SQLite and on PostgreSQL: keys and scopes,
 * pushes, Bloomreach events (invalid ones revoke), CSV import (the seed's example file, twice),
 * last-write-wins, expiry, verify (CookieBoss shape), subject record and check, the audit trail
 * (query, export, chain), and stored consent deciding hits that carry none.
 */
forEachEngine('consent API', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let writer: string;
  let reader: string;
  let auditor: string;

  beforeAll(async () => {
    db = await engine.open();
    vendor = await startVendor();
    const config = testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } },
      destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } }],
      api: { rateLimit: { perSecond: 1000, burst: 1000 } },
    });
    tw = await startTagwarden(config, undefined, { db });
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
    reader = (await createApiKey(db, { label: 'reader', scopes: ['consent:read'] })).key;
    auditor = (await createApiKey(db, { label: 'auditor', scopes: ['audit:read'] })).key;
  });

  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  async function call(method: string, path: string, key: string | undefined, body?: unknown, type = 'application/json') {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers['x-api-key'] = key;
    if (body !== undefined) headers['content-type'] = type;
    const res = await fetch(`${tw.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
    const text = await res.text();
    let json: any;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json, headers: res.headers };
  }

  it('401 without a key or with a wrong one, 403 without the scope', async () => {
    expect((await call('GET', '/api/v1/subjects/visitor/v1', undefined)).status).toBe(401);
    expect((await call('GET', '/api/v1/subjects/visitor/v1', 'tw_wrong')).status).toBe(401);
    const r = await call('POST', '/api/v1/consent', reader, { visitorId: 'v1', categories: { analytics: true } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('TW_ERR_FORBIDDEN');
  });

  it('a push is recorded, verified in the CookieBoss shape, and readable', async () => {
    const t = Date.UTC(2026, 0, 10);
    const r = await call('POST', '/api/v1/consent', writer, { visitorId: 'v1', userId: 'u1', categories: { analytics: true, advertising: false }, timestamp: new Date(t).toISOString(), geoCountry: 'DE' });
    expect(r.status).toBe(200);
    expect(r.body.items).toEqual([expect.objectContaining({ item: 'analytics', valid: true, applied: true }), expect.objectContaining({ item: 'advertising', applied: true })]);
    const v = await call('GET', '/api/v1/public/sites/shop/consent/verify?visitor_id=v1', reader);
    expect(v.body).toEqual({ hasConsent: true, categories: { marketing: false, analytics: true }, consentedAt: new Date(t).toISOString(), geoCountry: 'DE' });
    // Linked: the user sees the visitor's consent.
    const check = await call('GET', '/api/v1/subjects/user/u1/check?category=analytics', reader);
    expect(check.body).toMatchObject({ consented: true, state: 'granted' });
    expect((await call('GET', '/api/v1/public/sites/shop/consent/verify?visitor_id=nobody', reader)).body).toEqual({ hasConsent: false, categories: null, consentedAt: null, geoCountry: null });
  });

  it('last write wins by the consent time: an older push is audited but changes nothing', async () => {
    await call('POST', '/api/v1/consent', writer, { visitorId: 'v2', categories: { analytics: false }, timestamp: '2026-02-01T00:00:00Z' });
    const older = await call('POST', '/api/v1/consent', writer, { visitorId: 'v2', categories: { analytics: true }, timestamp: '2026-01-01T00:00:00Z' });
    expect(older.body.items[0]).toMatchObject({ applied: false });
    expect((await call('GET', '/api/v1/subjects/visitor/v2/check?category=analytics', reader)).body).toMatchObject({ consented: false, state: 'denied' });
  });

  it('a passed valid_until reads as denied', async () => {
    await call('POST', '/api/v1/consent/events', writer, { customer_ids: { registered: 'u-exp' }, action: 'accept', category: 'analytics', timestamp: 1522156555, valid_until: 1522160000 });
    expect((await call('GET', '/api/v1/subjects/user/u-exp/check?category=analytics', reader)).body).toMatchObject({ consented: false, state: 'denied', expired: true });
  });

  it('Bloomreach events: an invalid one is stored and revokes its category', async () => {
    const r = await call('POST', '/api/v1/consent/events', writer, {
      events: [
        { customer_ids: { registered: 'u3' }, event_type: 'consent', timestamp: 1528114618, properties: { action: 'accept', category: 'newsletter', valid_until: 'unlimited' } },
        { customer_ids: { registered: 'u3' }, timestamp: 1528114700, properties: { action: 'accpt', category: 'newsletter', valid_until: 'unlimited' } },
        { timestamp: 1, properties: { action: 'accept', category: 'x', valid_until: 'unlimited' } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.events[0]).toMatchObject({ stored: true, valid: true, applied: true });
    expect(r.body.events[1]).toMatchObject({ stored: true, valid: false, revoked: true, applied: true });
    expect(r.body.events[2]).toMatchObject({ stored: false });
    expect((await call('GET', '/api/v1/subjects/user/u3/check?category=newsletter', reader)).body).toMatchObject({ consented: false });
  });

  it("imports the seed's CSV example as is, and a second import changes nothing", async () => {
    const file = 'action,category,valid_until,timestamp,customer_id\nreject,weekly_newsletter,unlimited,1522158555,[email protected]\naccept,weekly_newsletter,unlimited,1522156555,[email protected]\naccept,push_notification,1522112345,1522152855,[email protected]\n';
    const first = await call('POST', '/api/v1/consent/import', writer, file, 'text/csv');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ rows: 3, stored: 3, duplicates: 0, errors: [] });
    const before = await call('GET', `/api/v1/subjects/user/${encodeURIComponent('[email protected]')}`, reader);
    const second = await call('POST', '/api/v1/consent/import', writer, file, 'text/csv');
    expect(second.body).toMatchObject({ rows: 3, stored: 0, duplicates: 3 });
    const after = await call('GET', `/api/v1/subjects/user/${encodeURIComponent('[email protected]')}`, reader);
    expect(after.body).toEqual(before.body);
    // The reject is newer than the accept: the newsletter is not consented.
    expect(after.body.items.weekly_newsletter).toMatchObject({ status: 'denied' });
  });

  it('reports bad CSV rows by number and refuses a file without the header', async () => {
    const r = await call('POST', '/api/v1/consent/import', writer, 'action,category,valid_until,timestamp,customer_id\naccept,c,unlimited,1522156555,\nmaybe,c,unlimited,1522156555,who\n', 'text/csv');
    expect(r.body.errors).toEqual([
      { row: 2, error: expect.stringContaining('customer_id'), stored: false },
      { row: 3, error: expect.stringContaining('action: must be accept or reject'), stored: true },
    ]);
    expect((await call('POST', '/api/v1/consent/import', writer, 'a,b\n1,2\n', 'text/csv')).status).toBe(400);
  });

  it("a TCF-only push (Seeka's identity payload) is recorded and audited", async () => {
    const r = await call('POST', '/api/v1/consent', writer, { userId: 'seeka-user', consent: { privacy: { tcfConsentString: 'CQtcfstring' } } });
    expect(r.status).toBe(200);
    expect((await call('GET', '/api/v1/subjects/user/seeka-user', reader)).body).toMatchObject({ tcfString: 'CQtcfstring' });
    const audit = await call('GET', '/api/v1/audit?subject=user:seeka-user', auditor);
    expect(audit.body.entries).toEqual([expect.objectContaining({ action: 'record', item: null, applied: true, message: expect.stringContaining('CQtcfstring') })]);
    // The same push again is not a second input.
    await call('POST', '/api/v1/consent', writer, { userId: 'seeka-user', consent: { privacy: { tcfConsentString: 'CQtcfstring' } }, timestamp: audit.body.entries[0].consentAt });
    expect((await call('GET', '/api/v1/audit?subject=user:seeka-user', auditor)).body.entries).toHaveLength(1);
  });

  it('every route answers 400 with the failing field', async () => {
    const cases: [string, string, string][] = [
      ['/api/v1/audit?limit=5000', auditor, 'limit'],
      ['/api/v1/audit?subjct=user:u3', auditor, ''],
      ['/api/v1/audit?from=yesterday', auditor, 'from'],
      ['/api/v1/public/sites/shop/consent/verify', reader, 'visitor_id'],
      ['/api/v1/subjects/user/u1/check', reader, 'category'],
    ];
    for (const [path, key, field] of cases) {
      const r = await call('GET', path, key);
      expect(r.status, path).toBe(400);
      expect(r.body.error.code).toBe('TW_ERR_VALIDATION');
      if (field !== '') expect(r.body.error.details.issues.map((i: { path: string }) => i.path), path).toContain(field);
    }
    const push = await call('POST', '/api/v1/consent', writer, { visitorId: 'v9', categories: { analytics: 'yes' } });
    expect(push.status).toBe(400);
    expect(push.body.error.details.issues[0].path).toBe('categories.analytics');
  });

  it('the audit trail: filtered, paginated, exported, and its chain verifies', async () => {
    expect((await call('GET', '/api/v1/audit', reader)).status).toBe(403);
    const page = await call('GET', '/api/v1/audit?subject=user:u3&limit=1', auditor);
    expect(page.body.entries).toHaveLength(1);
    expect(page.body.nextCursor).toBeDefined();
    const next = await call('GET', `/api/v1/audit?subject=user:u3&limit=1&cursor=${encodeURIComponent(page.body.nextCursor)}`, auditor);
    expect(next.body.entries[0].seq).toBeGreaterThan(page.body.entries[0].seq);
    const invalid = await call('GET', '/api/v1/audit?valid=false', auditor);
    expect(invalid.body.entries.every((e: { valid: boolean }) => !e.valid)).toBe(true);
    const ndjson = await call('GET', '/api/v1/audit/export?subject=user:u3', auditor);
    expect(String(ndjson.body).trim().split('\n')).toHaveLength(2);
    const csv = await call('GET', '/api/v1/audit/export?format=csv&subject=user:u3', auditor);
    expect(String(csv.body).split('\n')[0]).toMatch(/^seq,subjectKey,action,item/);
    expect((await call('GET', '/api/v1/audit/verify', auditor)).body).toMatchObject({ ok: true });
  });

  it('a hit carrying a visitor id and a user id links them: consent pushed for the user then decides the visitor', async () => {
    const send = (messageId: string, extra: Record<string, unknown>) =>
      fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'x', ...extra }) });
    await send('link-1', { anonymousId: 'linked-visitor', userId: 'linked-user' });
    await tw.app.flush(5000);
    // The link is written after the answer; wait for it (the visitor's record then lists the user).
    for (let i = 0; i < 100; i++) {
      const r = await call('GET', '/api/v1/subjects/visitor/linked-visitor', reader);
      if (r.status === 200 && JSON.stringify(r.body.linked).includes('linked-user')) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    await call('POST', '/api/v1/consent', writer, { userId: 'linked-user', categories: { analytics: true } });
    expect((await call('GET', '/api/v1/subjects/visitor/linked-visitor/check?category=analytics', reader)).body).toMatchObject({ consented: true });
    await send('link-2', { anonymousId: 'linked-visitor' });
    await tw.app.flush(5000);
    const ids = vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));
    expect(ids).toContain('link-2');
  });

  it('stored consent decides a hit that carries none', async () => {
    await call('POST', '/api/v1/consent', writer, { visitorId: 'hit-visitor', categories: { analytics: true } });
    const r = await fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId: 'stored-1', event: 'x', anonymousId: 'hit-visitor' }) });
    expect(r.status).toBe(200);
    const none = await fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId: 'stored-2', event: 'x', anonymousId: 'stranger' }) });
    expect(none.status).toBe(200);
    await tw.app.flush(5000);
    const ids = vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));
    expect(ids).toContain('stored-1');
    expect(ids).not.toContain('stored-2');
  });
});

forEachEngine('consent-change webhooks through the API', (engine) => {
  it('a push is delivered, signed, to a subscribed receiver; subscriptions need the admin scope', async () => {
    const db = await engine.open();
    const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const tw = await startTagwarden(
      testConfig({ site: { id: 'shop', categories: { analytics: {} } }, api: { webhooks: { allowPrivate: true } } }),
      undefined,
      { db, webhooks: { pollMs: 50 } },
    );
    try {
      const admin = (await createApiKey(db, { label: 'admin', scopes: ['admin'] })).key;
      const writer = (await createApiKey(db, { label: 'w', scopes: ['consent:write'] })).key;
      const post = (path: string, key: string, body: unknown) =>
        fetch(`${tw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body) });
      expect((await post('/api/v1/webhooks', writer, { url: receiverUrl })).status).toBe(403);
      const created = await post('/api/v1/webhooks', admin, { url: receiverUrl, filters: { items: ['analytics'] } });
      expect(created.status).toBe(201);
      const { secret } = (await created.json()) as { secret: string };
      expect((await post('/api/v1/consent', writer, { visitorId: 'hooked', categories: { analytics: true } })).status).toBe(200);
      const deadline = Date.now() + 5000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(received).toHaveLength(1);
      const hit = received[0]!;
      expect(verifyWebhook(secret, hit.headers, hit.body)).toMatchObject({ ok: true });
      expect(JSON.parse(hit.body)).toMatchObject({ type: 'consent.changed', siteId: 'shop', subject: { type: 'visitor', id: 'hooked' }, version: expect.any(Number), items: [expect.objectContaining({ item: 'analytics', status: 'granted' })] });
    } finally {
      await tw.close();
      await closeServer(receiver);
      await db.close();
    }
  });
});
