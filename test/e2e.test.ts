import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, sha256, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';

/**
 * The first complete path: Segment events in over HTTP, consent read from the event, the policy
 * per destination, templates rendering the vendor requests, delivery to fake vendors on
 * 127.0.0.1. Asserts exactly which vendor requests arrived, bodies included, and which did not.
 */
describe('end to end: Segment in, consent-gated deliveries out', () => {
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  const adminKey = 'explain-admin-key-0123456789';

  beforeAll(async () => {
    vendor = await startVendor();
    const config = testConfig({
      site: {
        id: 'shop',
        dataControlMode: 'opt-in',
        categories: { advertising: { aliases: ['C0004'] }, analytics: {}, functional: {} },
      },
      destinations: [
        {
          id: 'meta',
          template: 'meta-capi',
          settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' },
          endpoint: `${vendor.url}/meta/events`,
          integrationNames: ['Facebook Conversions API'],
        },
        {
          id: 'ga4',
          template: 'ga4',
          settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' },
          consent: { categories: ['analytics'] },
          endpoint: `${vendor.url}/ga4/mp/collect`,
        },
        { id: 'crm', template: 'webhook', settings: { url: `${vendor.url}/crm` } },
      ],
      debug: { explain: true, adminKey },
    });
    tw = await startTagwarden(config);
  });

  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  // Recent: GA4 and Meta refuse old events (72 h, 7 days), and their templates' vendor rules drop them.
  const timestamp = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString();
  function track(messageId: string, extra: Record<string, unknown> = {}, context: Record<string, unknown> = {}) {
    return {
      messageId,
      event: 'Order Completed',
      anonymousId: `anon-${messageId}`,
      timestamp,
      properties: { value: 42.5, currency: 'EUR', order_id: `o-${messageId}` },
      context: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 test', page: { url: 'https://shop.example/checkout' }, traits: { email: ' Jane.Doe@Example.com ' }, ...context },
      ...extra,
    };
  }

  const consent = (prefs: Record<string, unknown>) => ({ consent: { categoryPreferences: prefs } });

  function received(prefix: string): VendorHit[] {
    return vendor.hits.filter((h) => h.path.startsWith(prefix));
  }
  function metaIds(): string[] {
    return received('/meta').flatMap((h) => (h.body as { data: { event_id: string }[] }).data.map((e) => e.event_id)).sort();
  }
  function ga4Ids(): string[] {
    // GA4 MP has no event id; the client id carries the message id in this test.
    return received('/ga4').map((h) => (h.body as { client_id: string }).client_id.replace('anon-', '')).sort();
  }
  function crmIds(): string[] {
    return received('/crm').flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId)).sort();
  }

  it('answers every hit at once and delivers exactly what consent allows', async () => {
    const sends = [
      post(`${tw.url}/v1/track`, track('m-all', {}, consent({ advertising: true, analytics: true }))),
      post(`${tw.url}/v1/track`, track('m-analytics', {}, consent({ advertising: false, analytics: true }))),
      post(`${tw.url}/v1/track`, track('m-none')),
      post(`${tw.url}/v1/track`, track('m-empty', {}, consent({}))),
      post(`${tw.url}/v1/track`, track('m-alias', {}, consent({ C0004: true, analytics: false }))),
      post(`${tw.url}/v1/track`, track('m-crm-off', { integrations: { crm: false } }, consent({ advertising: true, analytics: true }))),
      post(`${tw.url}/v1/track`, track('m-fb-off', { integrations: { 'Facebook Conversions API': false } }, consent({ advertising: true, analytics: true }))),
      post(`${tw.url}/v1/track`, track('m-all-off', { integrations: { All: false, crm: true } }, consent({ advertising: true, analytics: true }))),
      post(`${tw.url}/v1/track`, track('m-invalid', {}, consent({ advertising: 'yes', analytics: 'true' }))),
    ];
    for (const r of await Promise.all(sends)) expect(r).toEqual({ status: 200, body: { success: true } });

    await tw.app.flush(5000);

    expect(metaIds()).toEqual(['m-alias', 'm-all', 'm-crm-off'].sort());
    expect(ga4Ids()).toEqual(['m-all', 'm-analytics', 'm-crm-off', 'm-fb-off'].sort());
    // The webhook is not gated by category: everything but what the integrations object turned off.
    expect(crmIds()).toEqual(['m-alias', 'm-all', 'm-all-off', 'm-analytics', 'm-empty', 'm-fb-off', 'm-invalid', 'm-none'].sort());
  });

  it('sends Meta the Conversions API shape, hashed as Meta requires, with the token in the query', () => {
    const hit = received('/meta')[0]!;
    expect(hit.method).toBe('POST');
    expect(hit.query).toEqual({ access_token: 'meta-secret-token' });
    expect(hit.headers['content-type']).toBe('application/json');
    const all = received('/meta')
      .flatMap((h) => (h.body as { data: Record<string, unknown>[] }).data)
      .find((e) => e.event_id === 'm-all');
    expect(all).toMatchObject({
      // Segment's "Order Completed" is Meta's standard Purchase event (templates/meta-capi, event_name).
      event_name: 'Purchase',
      event_time: Date.parse(timestamp) / 1000,
      event_id: 'm-all',
      action_source: 'website',
      event_source_url: 'https://shop.example/checkout',
      user_data: { em: sha256('jane.doe@example.com'), client_ip_address: '203.0.113.7', client_user_agent: 'Mozilla/5.0 test' },
      custom_data: { value: 42.5, currency: 'EUR', order_id: 'o-m-all' },
    });
  });

  it('sends GA4 the Measurement Protocol shape with its secrets in the query', () => {
    const hit = received('/ga4').find((h) => (h.body as any).client_id === 'anon-m-all')!;
    expect(hit.query).toEqual({ measurement_id: 'G-TEST123', api_secret: 'ga4-secret' });
    expect(hit.body).toMatchObject({ client_id: 'anon-m-all', events: [{ name: 'purchase' }] });
  });

  it('sends the webhook the canonical event', () => {
    const events = received('/crm').flatMap((h) => (h.body as any).batch as any[]);
    expect(events.find((e) => e.messageId === 'm-none')).toMatchObject({
      type: 'track',
      event: 'Order Completed',
      anonymousId: 'anon-m-none',
      properties: { value: 42.5 },
      context: { ip: '203.0.113.7' },
    });
  });

  it('explains decisions and renders requests without sending anything, secrets masked', async () => {
    const before = vendor.hits.length;
    const r = await post(`${tw.url}/debug/explain`, { type: 'track', ...track('m-explain', {}, consent({ advertising: true, analytics: false })) }, { authorization: `Bearer ${adminKey}` });
    expect(r.status).toBe(200);
    const byId = Object.fromEntries((r.body.destinations as any[]).map((d) => [d.id, d]));
    expect(byId.meta).toMatchObject({ decision: 'forward', reasons: ['consent_granted:advertising'], request: { method: 'POST' } });
    expect(byId.meta.request.url).toBe(`${vendor.url}/meta/events?access_token=[secret]`);
    expect(JSON.stringify(r.body)).not.toContain('meta-secret-token');
    expect(byId.ga4).toEqual({ id: 'ga4', template: 'ga4', decision: 'drop', reasons: ['consent_denied:analytics'] });
    expect(byId.crm).toMatchObject({ decision: 'forward', reasons: ['not_gated'] });
    await tw.app.flush(2000);
    expect(vendor.hits.length).toBe(before);
  });

  it('explain needs the admin key', async () => {
    const r = await post(`${tw.url}/debug/explain`, track('x'), { authorization: 'Bearer wrong-key-wrong-key' });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('TW_ERR_UNAUTHORIZED');
  });

  it('accepts text/plain bodies (sendBeacon) and the short routes', async () => {
    const res = await fetch(`${tw.url}/v1/t`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify(track('m-beacon')) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
  });

  it('accepts the valid events of a batch and reports the rest', async () => {
    const r = await post(`${tw.url}/v1/batch`, {
      batch: [
        { type: 'track', event: 'A', anonymousId: 'b1' },
        { type: 'track', anonymousId: 'b2' },
        { type: 'nope', anonymousId: 'b3' },
        { type: 'identify', userId: 'u4', traits: { plan: 'pro' } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      success: true,
      accepted: 2,
      rejected: [
        { index: 1, issues: [{ path: 'event', message: 'required' }] },
        { index: 2, issues: [{ path: 'type', message: 'must be one of track, page, screen, identify, group, alias' }] },
      ],
    });
  });

  it('says which field is wrong', async () => {
    const r = await post(`${tw.url}/v1/track`, { anonymousId: 'a', event: 'x', properties: 'nope' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('TW_ERR_VALIDATION');
    expect(r.body.error.details.issues[0].path).toBe('properties');
  });
});

describe('end to end: whenUnknown redact and hold, opt-out mode', () => {
  let vendor: Awaited<ReturnType<typeof startVendor>>;

  beforeAll(async () => {
    vendor = await startVendor();
  });
  afterAll(async () => {
    await vendor.close();
  });

  const base = (messageId: string, context: Record<string, unknown> = {}) => ({
    messageId,
    event: 'Purchase',
    anonymousId: `anon-${messageId}`,
    userId: 'user-1',
    context: { ip: '203.0.113.7', userAgent: 'UA', page: { url: 'https://shop.example/' }, traits: { email: 'a@b.example' }, ...context },
  });

  it('opt-in: unknown consent sends Meta the consent_unknown redaction and holds GA4, which then expires unsent', async () => {
    const clock = new FakeClock(Date.now());
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } },
        hold: { maxEvents: 10, maxAgeMs: 200 },
        destinations: [
          { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 't' }, endpoint: `${vendor.url}/r/meta`, consent: { whenUnknown: 'redact' } },
          { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST1', apiSecret: 's' }, endpoint: `${vendor.url}/r/ga4`, consent: { whenUnknown: 'hold' } },
        ],
      }),
      undefined,
      { consentClock: clock },
    );
    try {
      expect((await post(`${tw.url}/v1/track`, base('r-1'))).status).toBe(200);
      await tw.app.flush(5000);
      const meta = vendor.hits.filter((h) => h.path === '/r/meta');
      expect(meta).toHaveLength(1);
      const ev = (meta[0]!.body as { data: Record<string, any>[] }).data[0]!;
      expect(ev.event_id).toBe('r-1');
      // Identifiers are gone; only the user agent is left for Meta's matching.
      expect(ev.user_data).toEqual({ client_user_agent: 'UA' });
      expect(tw.app.pending.size).toBe(1);
      // Held on the consent clock: just before its deadline it is still held, then it expires.
      clock.advance(199);
      expect(tw.app.pending.size).toBe(1);
      clock.advance(1);
      expect(tw.app.pending.size).toBe(0);
      await tw.app.flush(2000);
      expect(vendor.hits.filter((h) => h.path === '/r/ga4')).toHaveLength(0);
      const metrics = await (await fetch(`${tw.url}/metrics`)).text();
      // The hold is counted as begun, and its end is the one decision of the event for ga4.
      expect(metrics).toContain('tagwarden_holds_started_total{destination="ga4",reason="consent_unknown:analytics"} 1');
      expect(metrics).toContain('tagwarden_held_events{destination="ga4"} 0');
      expect(metrics).not.toContain('outcome="hold"');
      expect(metrics).toContain('tagwarden_decisions_total{destination="ga4",outcome="drop",reason="consent_unresolved"} 1');
      expect(metrics).toContain('tagwarden_decisions_total{destination="meta",outcome="redact",reason="consent_unknown:advertising"} 1');
    } finally {
      await tw.close();
    }
  });

  it('opt-out: no consent object flows, a denied or absent category does not', async () => {
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-out', categories: { advertising: {}, analytics: {} } },
        destinations: [{ id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 't' }, endpoint: `${vendor.url}/o/meta` }],
      }),
    );
    try {
      await post(`${tw.url}/v1/track`, base('o-none'));
      await post(`${tw.url}/v1/track`, base('o-denied', { consent: { categoryPreferences: { advertising: false } } }));
      await post(`${tw.url}/v1/track`, base('o-absent', { consent: { categoryPreferences: { analytics: true } } }));
      await post(`${tw.url}/v1/track`, base('o-granted', { consent: { categoryPreferences: { advertising: true } } }));
      await tw.app.flush(5000);
      const ids = vendor.hits
        .filter((h) => h.path === '/o/meta')
        .flatMap((h) => (h.body as { data: { event_id: string }[] }).data.map((e) => e.event_id))
        .sort();
      expect(ids).toEqual(['o-granted', 'o-none']);
    } finally {
      await tw.close();
    }
  });

  it('retries a vendor 503 after its Retry-After and delivers once', async () => {
    let calls = 0;
    const flaky = await startVendor(() => (++calls === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200, body: '{}' }));
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: {} },
        destinations: [{ id: 'crm', template: 'webhook', settings: { url: `${flaky.url}/hook` } }],
      }),
    );
    try {
      const t0 = Date.now();
      await post(`${tw.url}/v1/track`, base('rt-1'));
      await tw.app.flush(5000);
      expect(flaky.hits.map((h) => (h.body as { batch: { messageId: string }[] }).batch[0]!.messageId)).toEqual(['rt-1', 'rt-1']);
      expect(flaky.hits[1]!.headers['content-type']).toBe('application/json');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    } finally {
      await tw.close();
      await flaky.close();
    }
  });
});
