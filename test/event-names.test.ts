import { describe, expect, it } from 'vitest';
import { post, withTagwarden } from './helpers.ts';

/**
 * Regression (issue 10): Segment's e-commerce names and GA4's recommended events reached Meta as
 * custom events, so Meta never counted a Purchase or an AddToCart. The names are now mapped by the
 * templates' data (templates/meta-capi, templates/ga4: `@lookup`); here, end to end, each client's
 * names arrive at Meta as its standard events and at GA4 as its recommended names.
 */
describe('regression: e-commerce and GA4 recommended names reached Meta as custom events', () => {
  const ctx = withTagwarden((url) => ({
    site: { id: 'shop', dataControlMode: 'disabled', categories: { advertising: {}, analytics: {} } },
    destinations: [
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, endpoint: `${url}/ga4/mp/collect` },
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 'meta-token' }, endpoint: `${url}/meta/events` },
    ],
  }));

  const metaNames = (): string[] =>
    ctx.vendor.hits
      .filter((h) => h.path === '/meta/events')
      .flatMap((h) => (h.body as { data: Array<{ event_name: string; event_id: string }> }).data)
      .sort((a, b) => a.event_id.localeCompare(b.event_id))
      .map((e) => e.event_name);
  const ga4Names = (): string[] =>
    ctx.vendor.hits
      .filter((h) => h.path === '/ga4/mp/collect')
      .flatMap((h) => (h.body as { events: Array<{ name: string; params: { transaction_id?: string } }> }).events.map((e) => e.name))
      .sort();

  it('Segment e-commerce spec names reach Meta as standard events and GA4 as recommended names', async () => {
    ctx.vendor.hits.length = 0;
    const names = ['Order Completed', 'Product Added', 'Checkout Started', 'Product Viewed', 'Products Searched', 'Payment Info Entered', 'Signed Up', 'Product Added to Wishlist'];
    const batch = names.map((event, i) => ({
      type: 'track',
      event,
      messageId: `m-${i}`,
      anonymousId: 'visitor-1',
      context: { page: { url: 'https://shop.example/' }, userAgent: 'Mozilla/5.0 test' },
    }));
    expect((await post(`${ctx.tw.url}/v1/batch`, { batch })).status).toBe(200);
    await ctx.tw.app.flush(5000);
    expect(metaNames()).toEqual(['Purchase', 'AddToCart', 'InitiateCheckout', 'ViewContent', 'Search', 'AddPaymentInfo', 'CompleteRegistration', 'AddToWishlist']);
    expect(ga4Names()).toEqual(['add_payment_info', 'add_to_cart', 'add_to_wishlist', 'begin_checkout', 'purchase', 'search', 'sign_up', 'view_item']);
  });

  it('GA4 recommended events from gtag.js reach Meta as standard events', async () => {
    ctx.vendor.hits.length = 0;
    const names = ['purchase', 'add_to_cart', 'begin_checkout', 'view_item', 'generate_lead', 'search', 'add_payment_info', 'sign_up'];
    const base = `v=2&tid=G-TEST123&cid=111.222&_p=1700000000&_s=1&dl=${encodeURIComponent('https://shop.example/')}`;
    const body = names.map((en) => `en=${en}`).join('\n');
    expect((await fetch(`${ctx.tw.url}/g/collect?${base}`, { method: 'POST', body, headers: { 'user-agent': 'Mozilla/5.0 test' } })).status).toBe(204);
    await ctx.tw.app.flush(5000);
    const meta = ctx.vendor.hits
      .filter((h) => h.path === '/meta/events')
      .flatMap((h) => (h.body as { data: Array<{ event_name: string }> }).data.map((e) => e.event_name))
      .sort();
    expect(meta).toEqual(['AddPaymentInfo', 'AddToCart', 'CompleteRegistration', 'InitiateCheckout', 'Lead', 'Purchase', 'Search', 'ViewContent']);
  });
});
