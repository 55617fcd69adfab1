import { describe, expect, it } from 'vitest';
import { post, withTagwarden } from './helpers.ts';

/**
 * Vendor rules end to end (issue 14, "validate before send"): an event whose rendered form breaks a
 * limit its vendor documents is decided `drop` with reason `vendor_rule:<id>`: counted in
 * tagwarden_decisions_total like any drop, explained by /debug/explain, never sent to the fake
 * vendor; the event next to it that keeps the rules is sent.
 */
const adminKey = 'vendor-rules-admin-key-0123456789';

describe('vendor rules', () => {
  const ctx = withTagwarden((vendorUrl) => ({
    site: { id: 'shop', dataControlMode: 'opt-out', categories: { advertising: {}, analytics: {} } },
    destinations: [
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, endpoint: `${vendorUrl}/ga4` },
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-secret-token' }, endpoint: `${vendorUrl}/meta` },
    ],
    debug: { explain: true, adminKey },
  }));
  const track = (messageId: string, event: string, extra: Record<string, unknown> = {}) => ({
    messageId, anonymousId: 'anon-1', event, context: { userAgent: 'UA/1.0', page: { url: 'https://shop.example.com/' } }, properties: { value: 1, currency: 'EUR' }, ...extra,
  });

  it('drops what breaks a rule with its reason, sends the rest', async () => {
    expect((await post(`${ctx.tw.url}/v1/track`, track('ok-1', 'Order Completed'))).status).toBe(200);
    // A GA4-reserved prefix (Meta has no such rule: it is sent there).
    expect((await post(`${ctx.tw.url}/v1/track`, track('bad-name', 'google_signal'))).status).toBe(200);
    // No page URL: Meta's website events need event_source_url (GA4 does not).
    expect((await post(`${ctx.tw.url}/v1/track`, track('no-url', 'Order Completed', { context: { userAgent: 'UA/1.0' } }))).status).toBe(200);
    await ctx.tw.app.flush(5000);

    const ga4Names = ctx.vendor.hits.filter((h) => h.path === '/ga4').flatMap((h) => (h.body as { events: { name: string }[] }).events.map((e) => e.name));
    expect(ga4Names.sort()).toEqual(['purchase', 'purchase']);
    const metaIds = ctx.vendor.hits.filter((h) => h.path === '/meta').flatMap((h) => (h.body as { data: { event_id: string }[] }).data.map((e) => e.event_id));
    expect(metaIds.sort()).toEqual(['bad-name', 'ok-1']);

    const metrics = await (await fetch(`${ctx.tw.url}/metrics`)).text();
    expect(metrics).toContain('tagwarden_decisions_total{destination="ga4",outcome="drop",reason="vendor_rule:ga4_event_name"} 1');
    expect(metrics).toContain('tagwarden_decisions_total{destination="meta",outcome="drop",reason="vendor_rule:meta_event_source_url"} 1');
  });

  it('/debug/explain shows the drop, its reason and the field (never its value)', async () => {
    const r = await post(`${ctx.tw.url}/debug/explain`, track('explain-1', 'Order Completed', { properties: { coupon: 'C'.repeat(101) } }), { authorization: `Bearer ${adminKey}` });
    expect(r.status).toBe(200);
    const ga4 = (r.body.destinations as { id: string; reasons: string[] }[]).find((d) => d.id === 'ga4');
    expect(ga4).toMatchObject({ decision: 'drop', vendorRule: { rule: 'ga4_param_value_length', path: 'params.coupon' } });
    expect(ga4?.reasons.at(-1)).toBe('vendor_rule:ga4_param_value_length');
    expect(ga4).not.toHaveProperty('request');
    expect(JSON.stringify(ga4)).not.toContain('CCCC');
  });
});
