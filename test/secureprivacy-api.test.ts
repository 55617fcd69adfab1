import { request } from 'node:http';
import { expect, it } from 'vitest';
import { verifyWebhook } from '../src/api/webhook-sign.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { clientIdFor, loadClientIdKey } from '../src/store/client-id.ts';
import { listDeliveries, listSubscriptions } from '../src/store/webhooks.ts';
import { consentApiHarness } from './consent-api-harness.ts';
import { forEachEngine } from './engines.ts';
import { startReceiver } from './webhook-receiver.ts';

/**
 * SecurePrivacy's Universal Consent API (seed secureprivacy-universal-consent-api.txt) over HTTP,
 * on SQLite and PostgreSQL, with the seed's PascalCase requests as written ("string" placeholders
 * filled with realistic values).
 */

interface Answer {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** One request on node:http, so a GET can carry a JSON body as the seed's check and query do. */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers: { ...(text === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }), ...headers } }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString()));
      res.on('end', () => {
        let json: unknown;
        try {
          json = data === '' ? undefined : JSON.parse(data);
        } catch {
          json = data;
        }
        resolve({ status: res.statusCode ?? 0, body: json, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

const RECORD_FIELDS = ['ClientId', 'ConsentGiven', 'ConsentType', 'Created', 'CustomUserId', 'Id', 'LastUpdated', 'Metadata', 'Reference', 'URI'];
const QUERY_FIELDS = ['ClientId', 'ConsentGiven', 'ConsentType', 'Created', 'Fingerprint', 'Id', 'LastUpdated', 'Metadata', 'Reference', 'URI'];
const FINGERPRINT_FIELDS = ['City', 'Country', 'CustomUserId', 'IP', 'ProxifiedIP', 'State', 'UserAgent'];

const DAY = 86_400_000;

forEachEngine('SecurePrivacy universal consent API', (engine) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 15, 9, 0, 0));
  const ctx = consentApiHarness(
    engine,
    {
      server: { trustProxyHops: 1 },
      site: { id: 'shop', categories: { necessary: {}, functional: {}, analytics: {}, advertising: {} } },
      api: {
        secureprivacy: {
          integrations: [{ id: 'int-7f3a9c', reference: 'Newsletter' }],
          geoHeaders: { city: 'cf-ipcity', state: 'cf-region', country: 'cf-ipcountry' },
          integrationRateLimit: { perSecond: 1, burst: 3 },
        },
      },
    },
    { deps: { consentClock: clock, webhooks: false } },
  );
  // Not the harness's call (fetch): the seed's check and query are GETs with a JSON body.
  // The ClientId a CustomUserId gets on this store (keyed by the store's secret).
  const clientIdOf = async (customUserId: string): Promise<string> => clientIdFor(await loadClientIdKey(ctx.db, 0), 'shop', customUserId);
  const call = (method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}) =>
    send(ctx.tw.url, method, path, { ...(key === undefined ? {} : { 'x-api-key': key }), ...headers }, body);

  const dealership = {
    ConsentGiven: 'All',
    CustomUserId: 'anna.jensen',
    URI: 'https://cars.example.com/dealers/aarhus',
    Metadata: '{"dealer":"Aarhus Auto","form":"test-drive"}',
    Reference: 'Dealership',
    ConsentType: 'Dealership',
  };

  it('create answers Created and ClientId; the same CustomUserId always the same ClientId; keys and scopes as /api/v1', async () => {
    expect((await call('POST', '/api/universalconsent', undefined, dealership)).status).toBe(401);
    expect((await call('POST', '/api/universalconsent', ctx.reader, dealership)).status).toBe(403);
    const r = await call('POST', '/api/universalconsent', ctx.writer, dealership);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['ClientId', 'Created']);
    expect(r.body.ClientId).toBe((await clientIdOf('anna.jensen')));
    expect(r.body.Created).toBe(new Date(clock.now()).toISOString());
    clock.advance(60_000);
    const call2 = await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, Reference: 'Call', ConsentType: 'Call', Metadata: '{"phone":"+4512345678"}' });
    expect(call2.body.ClientId).toBe(r.body.ClientId);
    // The derived ClientId is not a visitor id of that person's profile (anyone can compute it).
    expect((await call('GET', `/api/v1/subjects/visitor/${r.body.ClientId as string}`, ctx.reader)).status).toBe(404);
    // Field names and ConsentGiven's values also match ignoring case, as ASP.NET binds them.
    const camel = await call('POST', '/api/universalconsent', ctx.writer, { consentGiven: 'all', customUserId: 'camel.case', reference: 'Chatbot', consentType: 'Chatbot' });
    expect(camel.body.ClientId).toBe((await clientIdOf('camel.case')));
    // Without a CustomUserId, a new ClientId each time.
    const anon1 = await call('POST', '/api/universalconsent', ctx.writer, { ConsentGiven: 'None', Reference: 'Chatbot', ConsentType: 'Chatbot' });
    const anon2 = await call('POST', '/api/universalconsent', ctx.writer, { ConsentGiven: 'None', Reference: 'Chatbot', ConsentType: 'Chatbot' });
    expect(anon1.status).toBe(200);
    expect(anon1.body.ClientId).not.toBe(anon2.body.ClientId);
    expect((await call('GET', `/api/universalconsent/${anon1.body.ClientId as string}?Reference=Chatbot`, ctx.reader)).body).toMatchObject({ ConsentGiven: 'None', ConsentType: 'Chatbot', ClientId: anon1.body.ClientId });
  });

  it('the record has exactly the seed\'s fields, and two ConsentTypes of two References are both kept', async () => {
    const clientId = (await clientIdOf('anna.jensen'));
    const d = await call('GET', `/api/universalconsent/${clientId}?Reference=Dealership`, ctx.reader);
    expect(d.status).toBe(200);
    expect(Object.keys(d.body).sort()).toEqual(RECORD_FIELDS);
    expect(d.body).toMatchObject({
      ClientId: clientId,
      CustomUserId: 'anna.jensen',
      Reference: 'Dealership',
      ConsentType: 'Dealership',
      ConsentGiven: 'All',
      URI: 'https://cars.example.com/dealers/aarhus',
      Metadata: '{"dealer":"Aarhus Auto","form":"test-drive"}',
      Created: new Date(Date.UTC(2026, 0, 15, 9, 0, 0)).toISOString(),
      LastUpdated: new Date(Date.UTC(2026, 0, 15, 9, 0, 0)).toISOString(),
    });
    expect(d.body.Id).toMatch(/^[0-9a-f]{24}$/);
    const c = await call('GET', `/api/universalconsent/${clientId}?Reference=Call`, ctx.reader);
    expect(c.body).toMatchObject({ Reference: 'Call', ConsentType: 'Call', Metadata: '{"phone":"+4512345678"}' });
    expect(c.body.Id).not.toBe(d.body.Id);
    // Without a Reference: the latest updated.
    expect((await call('GET', `/api/universalconsent/${clientId}`, ctx.reader)).body).toMatchObject({ Reference: 'Call' });
    expect((await call('GET', '/api/universalconsent/unknown-client-id', ctx.reader)).status).toBe(404);
  });

  it('check answers ConsentGiven, from a JSON body on GET as the seed sends it, or from the query', async () => {
    const clientId = (await clientIdOf('anna.jensen'));
    const r = await call('GET', '/api/universalconsent/consent-given', ctx.reader, { ClientId: clientId, Reference: 'Dealership' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ConsentGiven: 'All' });
    expect((await call('GET', `/api/universalconsent/consent-given?ClientId=${clientId}&Reference=Call`, ctx.reader)).body).toEqual({ ConsentGiven: 'All' });
    expect((await call('GET', `/api/universalconsent/consent-given?ClientId=${clientId}&Reference=Nothing`, ctx.reader)).body).toEqual({ ConsentGiven: null });
    expect((await call('GET', '/api/universalconsent/consent-given?ClientId=nobody&Reference=Call', ctx.reader)).status).toBe(404);
  });

  it('update by ClientId: Partial is recorded as given, ConsentType and Created kept; the categories follow the mapping', async () => {
    const clientId = (await clientIdOf('anna.jensen'));
    clock.advance(60_000);
    const r = await call('PATCH', '/api/universalconsent', ctx.writer, { ClientId: clientId, Reference: 'Dealership', ConsentGiven: 'Partial', Metadata: '{"dealer":"Aarhus Auto","form":"brochure"}' });
    expect(r.status).toBe(200);
    const d = await call('GET', `/api/universalconsent/${clientId}?Reference=Dealership`, ctx.reader);
    expect(d.body).toMatchObject({
      ConsentGiven: 'Partial',
      ConsentType: 'Dealership',
      Metadata: '{"dealer":"Aarhus Auto","form":"brochure"}',
      URI: 'https://cars.example.com/dealers/aarhus',
      Created: new Date(Date.UTC(2026, 0, 15, 9, 0, 0)).toISOString(),
      LastUpdated: new Date(clock.now()).toISOString(),
    });
    expect((await call('GET', '/api/universalconsent/consent-given', ctx.reader, { ClientId: clientId, Reference: 'Dealership' })).body).toEqual({ ConsentGiven: 'Partial' });
    // Partial: necessary and functional granted, the rest denied (config default).
    const check = async (category: string) => (await call('GET', `/api/v1/subjects/user/${encodeURIComponent('anna.jensen')}/check?category=${category}`, ctx.reader)).body.state;
    expect([await check('necessary'), await check('functional'), await check('analytics'), await check('advertising')]).toEqual(['granted', 'granted', 'denied', 'denied']);
    // The other reference is untouched.
    expect((await call('GET', `/api/universalconsent/${clientId}?Reference=Call`, ctx.reader)).body).toMatchObject({ ConsentGiven: 'All', ConsentType: 'Call' });
    expect((await call('PATCH', '/api/universalconsent', ctx.writer, { ClientId: 'no-such-client', Reference: 'Dealership', ConsentGiven: 'None' })).status).toBe(404);
  });

  it('refuses what the seed rules out, naming the field: Metadata over 200 characters, an unknown ConsentGiven', async () => {
    const long = await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, Metadata: 'x'.repeat(201) });
    expect(long.status).toBe(400);
    expect(long.body.error.message).toMatch(/^Metadata: /);
    expect((await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, Metadata: 'é'.repeat(200) })).status).toBe(200);
    const bad = await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, ConsentGiven: 'Yes' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^ConsentGiven: /);
    expect((await call('POST', '/api/universalconsent', ctx.writer, { ConsentGiven: 'All' })).body.error.message).toMatch(/^Reference: required/);
    // Hostile nesting is a 400, never a 500 from hashing the payload.
    const nested = `{"ConsentGiven":"All","Reference":"Deep","Extra":${'['.repeat(6000)}${']'.repeat(6000)}}`;
    const deep = await call('POST', '/api/universalconsent', ctx.writer, nested);
    expect(deep.status).toBe(400);
    expect(deep.body.error.message).toMatch(/nested deeper than 64 levels/);
  });

  it('a /api/v1 push with customUserId is found by its ClientId on these routes (partial gcm flags accepted)', async () => {
    const push = await call('POST', '/api/v1/consent', ctx.writer, { customUserId: 'v1.pusher', reference: 'Brochure', consentGiven: 'All', gcm: { ad_storage: 'denied' } });
    expect(push.status).toBe(200);
    expect(push.body.clientId).toBe((await clientIdOf('v1.pusher')));
    const check = await call('GET', `/api/universalconsent/consent-given?ClientId=${String(push.body.clientId)}&Reference=Brochure`, ctx.reader);
    expect(check.status).toBe(200);
    expect(check.body).toEqual({ ConsentGiven: 'All' });
  });

  it('URI comes from the Origin header when the body has none', async () => {
    const { URI: _uri, ...body } = { ...dealership, CustomUserId: 'origin.user' };
    const r = await call('POST', '/api/universalconsent', ctx.writer, body, { origin: 'https://shop.example.com' });
    expect((await call('GET', `/api/universalconsent/${r.body.ClientId as string}?Reference=Dealership`, ctx.reader)).body.URI).toBe('https://shop.example.com');
  });

  it('integration: records and checks without authentication, answering only the seed\'s fields; unknown integration 404', async () => {
    const headers = { 'x-forwarded-for': '198.51.100.10' };
    const post = await call('POST', '/api/universalconsent/integration/int-7f3a9c', undefined, { CustomUserId: 'newsletter.reader', ConsentGiven: 'All', ConsentType: 'EmailMarketing' }, headers);
    expect(post.status).toBe(200);
    expect(Object.keys(post.body).sort()).toEqual(['ClientId', 'Created', 'CustomUserId', 'Reference']);
    expect(post.body).toMatchObject({ ClientId: (await clientIdOf('newsletter.reader')), Reference: 'Newsletter', CustomUserId: 'newsletter.reader' });
    const get = await call('GET', `/api/universalconsent/integration/${post.body.ClientId as string}?IntegrationId=int-7f3a9c`, undefined, undefined, headers);
    expect(get.status).toBe(200);
    expect(get.body).toEqual({ ClientId: post.body.ClientId, Reference: 'Newsletter', ConsentGiven: 'All', Created: post.body.Created, Metadata: null });
    // A site's page may call it from a browser (CORS as for hits; the test allows any origin).
    const preflight = await call('OPTIONS', '/api/universalconsent/integration/int-7f3a9c', undefined, undefined, { origin: 'https://news.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://news.example.com');
    // An integration changes only its reference, never the site categories (mapCategories: false).
    expect((await call('GET', `/api/v1/subjects/user/${encodeURIComponent('newsletter.reader')}/check?category=analytics`, ctx.reader)).body.state).toBe('unknown');
    // Unknown integration, and a ClientId without a record of this integration: the same 404.
    expect((await call('POST', '/api/universalconsent/integration/int-unknown', undefined, { ConsentGiven: 'All' }, { 'x-forwarded-for': '198.51.100.11' })).status).toBe(404);
    expect((await call('GET', `/api/universalconsent/integration/${post.body.ClientId as string}?IntegrationId=int-unknown`, undefined, undefined, { 'x-forwarded-for': '198.51.100.11' })).status).toBe(404);
    const dealer = (await clientIdOf('anna.jensen'));
    const other = await call('GET', `/api/universalconsent/integration/${dealer}?IntegrationId=int-7f3a9c`, undefined, undefined, { 'x-forwarded-for': '198.51.100.12' });
    expect(other.status).toBe(404);
    expect(JSON.stringify(other.body)).not.toContain('Dealership');
  });

  it('integration routes are rate limited per client address: 429 with Retry-After', async () => {
    const headers = { 'x-forwarded-for': '192.0.2.1, 198.51.100.77' };
    const body = { ConsentGiven: 'None', ConsentType: 'Newsletter' };
    for (let i = 0; i < 3; i++) expect((await call('POST', '/api/universalconsent/integration/int-7f3a9c', undefined, body, headers)).status).toBe(200);
    const limited = await call('POST', '/api/universalconsent/integration/int-7f3a9c', undefined, body, headers);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.body.error.code).toBe('TW_ERR_RATE_LIMITED');
    // Unknown ids are counted too: guessing costs the guesser.
    expect((await call('GET', '/api/universalconsent/integration/x?IntegrationId=guess', undefined, undefined, headers)).status).toBe(429);
    // Another address is not affected; time refills the bucket.
    expect((await call('POST', '/api/universalconsent/integration/int-7f3a9c', undefined, body, { 'x-forwarded-for': '198.51.100.78' })).status).toBe(200);
    clock.advance(1000);
    expect((await call('POST', '/api/universalconsent/integration/int-7f3a9c', undefined, body, headers)).status).toBe(200);
  });

  it('query: the last week by default, filtered by the fingerprint, answering the seed\'s fields', async () => {
    const fp = { 'x-forwarded-for': '10.1.2.3, 203.0.113.5', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) QueryTest/1.0', 'cf-ipcountry': 'DK', 'cf-ipcity': 'Aarhus', 'cf-region': 'Central Denmark' };
    await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, CustomUserId: 'old.visitor' }, fp);
    clock.advance(8 * DAY);
    await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, CustomUserId: 'new.visitor' }, fp);
    await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, CustomUserId: 'swedish.visitor', ConsentGiven: 'None' }, { ...fp, 'x-forwarded-for': '198.51.100.200', 'cf-ipcountry': 'SE' });

    const all = await call('GET', '/api/universalconsent', ctx.reader, {});
    expect(all.status).toBe(200);
    const users = (all.body as any[]).map((c) => c.Fingerprint.CustomUserId);
    expect(users).toContain('new.visitor');
    expect(users).not.toContain('old.visitor');
    // Everything from before the clock jumped is older than a week.
    expect(users).not.toContain('anna.jensen');

    const byIp = await call('GET', '/api/universalconsent?IP=203.0.113.5', ctx.reader);
    expect(byIp.body).toHaveLength(1);
    const c = byIp.body[0];
    expect(Object.keys(c).sort()).toEqual(QUERY_FIELDS);
    expect(Object.keys(c.Fingerprint).sort()).toEqual(FINGERPRINT_FIELDS);
    expect(c).toMatchObject({
      ConsentGiven: true,
      Reference: 'Dealership',
      ConsentType: 'Dealership',
      ClientId: (await clientIdOf('new.visitor')),
      Fingerprint: { CustomUserId: 'new.visitor', IP: '203.0.113.5', ProxifiedIP: '10.1.2.3, 203.0.113.5', UserAgent: 'Mozilla/5.0 (X11; Linux x86_64) QueryTest/1.0', City: 'Aarhus', State: 'Central Denmark', Country: 'DK' },
    });
    // The seed's request as a body on GET.
    const body = await call('GET', '/api/universalconsent', ctx.reader, { UserAgent: 'Mozilla/5.0 (X11; Linux x86_64) QueryTest/1.0', Country: 'SE' });
    expect((body.body as any[]).map((x) => x.Fingerprint.CustomUserId)).toEqual(['swedish.visitor']);
    expect(body.body[0].ConsentGiven).toBe(false);
    expect((await call('GET', '/api/universalconsent?Country=NO', ctx.reader)).body).toEqual([]);
    expect((await call('GET', '/api/universalconsent?ConsentGiven=false&ConsentType=Dealership', ctx.reader)).body.map((x: any) => x.Fingerprint.CustomUserId)).toEqual(['swedish.visitor']);
    // An explicit window reaches the older one.
    const from = new Date(clock.now() - 9 * DAY).toISOString();
    const old = await call('GET', `/api/universalconsent?FromDate=${from}&CustomUserId=${encodeURIComponent('old.visitor')}`, ctx.reader);
    expect(old.body.map((x: any) => x.Fingerprint.CustomUserId)).toEqual(['old.visitor']);
    expect((await call('GET', '/api/universalconsent?FromDate=yesterday', ctx.reader)).status).toBe(400);
    expect((await call('GET', '/api/universalconsent', undefined)).status).toBe(401);
    expect((await call('GET', `/api/universalconsent?Reference=Dealership&CustomUserId=new.visitor`, ctx.reader)).body).toHaveLength(1);
    expect((await call('GET', `/api/universalconsent?Reference=Call&CustomUserId=new.visitor`, ctx.reader)).body).toEqual([]);
    // The evidence is the audit row's, hash-chained with it.
    const audit = await call('GET', `/api/v1/audit?subject=${encodeURIComponent('user:new.visitor')}&reference=Dealership`, ctx.auditor);
    expect(audit.body.entries[0].attributes).toMatchObject({ Reference: 'Dealership', ConsentGiven: 'All', ConsentType: 'Dealership', IP: '203.0.113.5', Country: 'DK', ClientId: (await clientIdOf('new.visitor')) });
    expect((await call('GET', '/api/v1/audit/verify', ctx.auditor)).body).toMatchObject({ ok: true });
  });

  it('query pages are bounded; the next page\'s cursor comes in X-Next-Cursor', async () => {
    for (const who of ['p1', 'p2', 'p3']) await call('POST', '/api/universalconsent', ctx.writer, { ...dealership, CustomUserId: `${who}@example.com`, ConsentType: 'Paging' });
    const first = await call('GET', '/api/universalconsent?ConsentType=Paging&PageSize=2', ctx.reader);
    expect(first.body).toHaveLength(2);
    const cursor = first.headers['x-next-cursor'] as string;
    expect(cursor).toBeTruthy();
    const second = await call('GET', `/api/universalconsent?ConsentType=Paging&PageSize=2&Cursor=${cursor}`, ctx.reader);
    expect(second.body).toHaveLength(1);
    expect(second.headers['x-next-cursor']).toBeUndefined();
    expect((await call('GET', '/api/universalconsent?PageSize=5000', ctx.reader)).status).toBe(400);
  });
});

forEachEngine('SecurePrivacy subscriptions', (engine) => {
  const ctx = consentApiHarness(engine, { site: { id: 'shop', categories: { analytics: {} } }, api: { webhooks: { allowPrivate: true } } }, { deps: { webhooks: { pollMs: 50 } }, keys: ['admin', 'consent:write'] });
  it('a subscription with a Reference filter is delivered only the matching changes, signed', async () => {
    const receiver = await startReceiver('', (res) => res.writeHead(200).end());
    const { hits: received, url: base } = receiver;
    try {
      const { admin, writer, db, tw } = ctx;
      const call = (method: string, path: string, key: string, body: unknown) => send(tw.url, method, path, { 'x-api-key': key }, body);
      expect((await call('POST', '/api/universalconsent/subscribe', writer, { Reference: 'Dealership', WebhookUrl: `${base}/any` })).status).toBe(403);
      const byRef = await call('POST', '/api/universalconsent/subscribe', admin, { Reference: 'Dealership', WebhookUrl: `${base}/dealership` });
      expect(byRef.status).toBe(200);
      const all = await call('POST', '/api/universalconsent/subscribe', admin, { CustomUserId: 'anna.jensen', Reference: 'Dealership', ConsentType: 'Dealership', WebhookUrl: `${base}/anna` });
      expect(all.status).toBe(200);
      expect((await call('POST', '/api/universalconsent/subscribe', admin, { Reference: 'Dealership' })).status).toBe(400);

      const record = (cui: string, reference: string, given = 'All') =>
        call('POST', '/api/universalconsent', writer, { ConsentGiven: given, CustomUserId: cui, URI: 'https://cars.example.com', Metadata: '{}', Reference: reference, ConsentType: reference });
      expect((await record('anna.jensen', 'Call')).status).toBe(200);
      expect((await record('anna.jensen', 'Dealership')).status).toBe(200);
      expect((await record('bob.nielsen', 'Dealership', 'None')).status).toBe(200);

      // Deliveries are written with the change: what is enqueued now is all there will be.
      const subs = await listSubscriptions(db, 'shop');
      const count = async (url: string) => (await listDeliveries(db, subs.find((s) => s.url === url)!.id)).length;
      expect(await count(`${base}/dealership`)).toBe(2);
      expect(await count(`${base}/anna`)).toBe(1);
      const deadline = Date.now() + 5000;
      while (received.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(received).toHaveLength(3);
      for (const hit of received) {
        const payload = JSON.parse(hit.body);
        expect(payload.items.map((i: { item: string }) => i.item)).toContain('ref:Dealership');
        expect(verifyWebhook(hit.path === '/anna' ? all.body.Secret : byRef.body.Secret, hit.headers, hit.body)).toMatchObject({ ok: true });
      }
      const anna = received.filter((h) => h.path === '/anna').map((h) => JSON.parse(h.body));
      expect(anna).toEqual([expect.objectContaining({ type: 'consent.changed', subject: { type: 'user', id: 'anna.jensen' } })]);
    } finally {
      await receiver.close();
    }
  });
});
