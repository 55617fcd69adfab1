import { expect, it } from 'vitest';
import { verifyWebhook } from '../src/api/webhook-sign.ts';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';
import { encodeWithLibrary } from './fixtures/tcf/build.ts';
import { startReceiver } from './webhook-receiver.ts';
/**
 * The consent API over HTTP, the same contract on SQLite and on PostgreSQL: keys and scopes,
 * pushes, Bloomreach events (invalid ones revoke), CSV import (the seed's example file, twice),
 * last-write-wins, expiry, verify (CookieBoss shape), subject record and check, the audit trail
 * (query, export, chain), and stored consent deciding hits that carry none.
 */
forEachEngine('consent API', (engine) => {
  const ctx = consentApiHarness(
    engine,
    (vendorUrl) => ({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } },
      destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendorUrl}/stats` }, consent: { categories: ['analytics'] } }],
    }),
    { vendor: true },
  );
  const { call } = ctx;

  it('401 without a key or with a wrong one, 403 without the scope', async () => {
    expect((await call('GET', '/api/v1/subjects/visitor/v1', undefined)).status).toBe(401);
    expect((await call('GET', '/api/v1/subjects/visitor/v1', 'tw_wrong')).status).toBe(401);
    const r = await call('POST', '/api/v1/consent', ctx.reader, { visitorId: 'v1', categories: { analytics: true } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('TW_ERR_FORBIDDEN');
  });

  it('a push is recorded, verified in the CookieBoss shape, and readable', async () => {
    const t = Date.UTC(2026, 0, 10);
    const r = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v1', userId: 'u1', categories: { analytics: true, advertising: false }, timestamp: new Date(t).toISOString(), geoCountry: 'DE' });
    expect(r.status).toBe(200);
    expect(r.body.items).toEqual([expect.objectContaining({ item: 'analytics', valid: true, applied: true }), expect.objectContaining({ item: 'advertising', applied: true })]);
    const v = await call('GET', '/api/v1/public/sites/shop/consent/verify?visitor_id=v1', ctx.reader);
    expect(v.body).toEqual({ hasConsent: true, categories: { marketing: false, analytics: true }, consentedAt: new Date(t).toISOString(), geoCountry: 'DE' });
    // Linked: the user sees the visitor's consent.
    const check = await call('GET', '/api/v1/subjects/user/u1/check?category=analytics', ctx.reader);
    expect(check.body).toMatchObject({ consented: true, state: 'granted' });
    expect((await call('GET', '/api/v1/public/sites/shop/consent/verify?visitor_id=nobody', ctx.reader)).body).toEqual({ hasConsent: false, categories: null, consentedAt: null, geoCountry: null });
  });

  it('last write wins by the consent time: an older push is audited but changes nothing', async () => {
    await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v2', categories: { analytics: false }, timestamp: '2026-02-01T00:00:00Z' });
    const older = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v2', categories: { analytics: true }, timestamp: '2026-01-01T00:00:00Z' });
    expect(older.body.items[0]).toMatchObject({ applied: false });
    expect((await call('GET', '/api/v1/subjects/visitor/v2/check?category=analytics', ctx.reader)).body).toMatchObject({ consented: false, state: 'denied' });
  });

  it('a passed valid_until reads as denied', async () => {
    await call('POST', '/api/v1/consent/events', ctx.writer, { customer_ids: { registered: 'u-exp' }, action: 'accept', category: 'analytics', timestamp: 1522156555, valid_until: 1522160000 });
    expect((await call('GET', '/api/v1/subjects/user/u-exp/check?category=analytics', ctx.reader)).body).toMatchObject({ consented: false, state: 'denied', expired: true });
  });

  it('Bloomreach events: an invalid one is stored and revokes its category', async () => {
    const r = await call('POST', '/api/v1/consent/events', ctx.writer, {
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
    expect((await call('GET', '/api/v1/subjects/user/u3/check?category=newsletter', ctx.reader)).body).toMatchObject({ consented: false });
  });

  it("imports the seed's CSV example as is, and a second import changes nothing", async () => {
    const file = 'action,category,valid_until,timestamp,customer_id\nreject,weekly_newsletter,unlimited,1522158555,[email protected]\naccept,weekly_newsletter,unlimited,1522156555,[email protected]\naccept,push_notification,1522112345,1522152855,[email protected]\n';
    const first = await call('POST', '/api/v1/consent/import', ctx.writer, file, 'text/csv');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ rows: 3, stored: 3, duplicates: 0, errors: [] });
    const before = await call('GET', `/api/v1/subjects/user/${encodeURIComponent('[email protected]')}`, ctx.reader);
    const second = await call('POST', '/api/v1/consent/import', ctx.writer, file, 'text/csv');
    expect(second.body).toMatchObject({ rows: 3, stored: 0, duplicates: 3 });
    const after = await call('GET', `/api/v1/subjects/user/${encodeURIComponent('[email protected]')}`, ctx.reader);
    expect(after.body).toEqual(before.body);
    // The reject is newer than the accept: the newsletter is not consented.
    expect(after.body.items.weekly_newsletter).toMatchObject({ status: 'denied' });
  });

  it('reports bad CSV rows by number and refuses a file without the header', async () => {
    const r = await call('POST', '/api/v1/consent/import', ctx.writer, 'action,category,valid_until,timestamp,customer_id\naccept,c,unlimited,1522156555,\nmaybe,c,unlimited,1522156555,who\n', 'text/csv');
    expect(r.body.errors).toEqual([
      { row: 2, error: expect.stringContaining('customer_id'), stored: false },
      { row: 3, error: expect.stringContaining('action: must be accept or reject'), stored: true },
    ]);
    expect((await call('POST', '/api/v1/consent/import', ctx.writer, 'a,b\n1,2\n', 'text/csv')).status).toBe(400);
  });

  it("a TCF-only push (Seeka's identity payload) is recorded and audited", async () => {
    // A pushed string must decode (through the bounded guard): a real one, as a CMP writes it.
    const tcString = encodeWithLibrary({ lastUpdated: new Date(Date.UTC(2026, 0, 10)), purposeConsents: [1] });
    const r = await call('POST', '/api/v1/consent', ctx.writer, { userId: 'seeka-user', consent: { privacy: { tcfConsentString: tcString } } });
    expect(r.status).toBe(200);
    expect((await call('GET', '/api/v1/subjects/user/seeka-user', ctx.reader)).body).toMatchObject({ tcfString: tcString });
    const audit = await call('GET', '/api/v1/audit?subject=user:seeka-user', ctx.auditor);
    expect(audit.body.entries).toEqual([expect.objectContaining({ action: 'record', item: null, applied: true, message: expect.stringContaining(tcString) })]);
    // The same push again is not a second input.
    await call('POST', '/api/v1/consent', ctx.writer, { userId: 'seeka-user', consent: { privacy: { tcfConsentString: tcString } }, timestamp: audit.body.entries[0].consentAt });
    expect((await call('GET', '/api/v1/audit?subject=user:seeka-user', ctx.auditor)).body.entries).toHaveLength(1);
  });

  it('every route answers 400 with the failing field', async () => {
    const cases: [string, string, string][] = [
      ['/api/v1/audit?limit=5000', ctx.auditor, 'limit'],
      ['/api/v1/audit?subjct=user:u3', ctx.auditor, ''],
      ['/api/v1/audit?from=yesterday', ctx.auditor, 'from'],
      ['/api/v1/public/sites/shop/consent/verify', ctx.reader, 'visitor_id'],
      ['/api/v1/subjects/user/u1/check', ctx.reader, 'category'],
    ];
    for (const [path, key, field] of cases) {
      const r = await call('GET', path, key);
      expect(r.status, path).toBe(400);
      expect(r.body.error.code).toBe('TW_ERR_VALIDATION');
      if (field !== '') expect(r.body.error.details.issues.map((i: { path: string }) => i.path), path).toContain(field);
    }
    const push = await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'v9', categories: { analytics: 'yes' } });
    expect(push.status).toBe(400);
    expect(push.body.error.details.issues[0].path).toBe('categories.analytics');
  });

  it('the audit trail: filtered, paginated, exported, and its chain verifies', async () => {
    expect((await call('GET', '/api/v1/audit', ctx.reader)).status).toBe(403);
    const page = await call('GET', '/api/v1/audit?subject=user:u3&limit=1', ctx.auditor);
    expect(page.body.entries).toHaveLength(1);
    expect(page.body.nextCursor).toBeDefined();
    const next = await call('GET', `/api/v1/audit?subject=user:u3&limit=1&cursor=${encodeURIComponent(page.body.nextCursor)}`, ctx.auditor);
    expect(next.body.entries[0].seq).toBeGreaterThan(page.body.entries[0].seq);
    const invalid = await call('GET', '/api/v1/audit?valid=false', ctx.auditor);
    expect(invalid.body.entries.every((e: { valid: boolean }) => !e.valid)).toBe(true);
    const ndjson = await call('GET', '/api/v1/audit/export?subject=user:u3', ctx.auditor);
    expect(String(ndjson.body).trim().split('\n')).toHaveLength(2);
    const csv = await call('GET', '/api/v1/audit/export?format=csv&subject=user:u3', ctx.auditor);
    expect(String(csv.body).split('\n')[0]).toMatch(/^seq,subjectKey,action,item/);
    expect((await call('GET', '/api/v1/audit/verify', ctx.auditor)).body).toMatchObject({ ok: true });
  });

  it('a hit carrying a visitor id and a user id links them: consent pushed for the user then decides the visitor', async () => {
    const send = (messageId: string, extra: Record<string, unknown>) =>
      fetch(`${ctx.tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'x', ...extra }) });
    await send('link-1', { anonymousId: 'linked-visitor', userId: 'linked-user' });
    await ctx.tw.app.flush(5000);
    // The link is written after the answer; wait for it (the visitor's record then lists the user).
    for (let i = 0; i < 100; i++) {
      const r = await call('GET', '/api/v1/subjects/visitor/linked-visitor', ctx.reader);
      if (r.status === 200 && JSON.stringify(r.body.linked).includes('linked-user')) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    await call('POST', '/api/v1/consent', ctx.writer, { userId: 'linked-user', categories: { analytics: true } });
    expect((await call('GET', '/api/v1/subjects/visitor/linked-visitor/check?category=analytics', ctx.reader)).body).toMatchObject({ consented: true });
    await send('link-2', { anonymousId: 'linked-visitor' });
    await ctx.tw.app.flush(5000);
    const ids = ctx.vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));
    expect(ids).toContain('link-2');
  });

  it('stored consent decides a hit that carries none', async () => {
    await call('POST', '/api/v1/consent', ctx.writer, { visitorId: 'hit-visitor', categories: { analytics: true } });
    const r = await fetch(`${ctx.tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId: 'stored-1', event: 'x', anonymousId: 'hit-visitor' }) });
    expect(r.status).toBe(200);
    const none = await fetch(`${ctx.tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId: 'stored-2', event: 'x', anonymousId: 'stranger' }) });
    expect(none.status).toBe(200);
    await ctx.tw.app.flush(5000);
    const ids = ctx.vendor.hits.flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId));
    expect(ids).toContain('stored-1');
    expect(ids).not.toContain('stored-2');
  });
});

forEachEngine('consent-change webhooks through the API', (engine) => {
  const ctx = consentApiHarness(engine, { site: { id: 'shop', categories: { analytics: {} } }, api: { webhooks: { allowPrivate: true } } }, { deps: { webhooks: { pollMs: 50 } }, keys: ['admin', 'consent:write'] });
  it('a push is delivered, signed, to a subscribed receiver; subscriptions need the admin scope', async () => {
    const receiver = await startReceiver('/hook', (res) => res.writeHead(200).end());
    const { hits: received, url: receiverUrl } = receiver;
    try {
      const { admin, writer, tw } = ctx;
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
      await receiver.close();
    }
  });
});
