import { Analytics, type Context } from '@segment/analytics-node';
import { describe, expect, it } from 'vitest';
import type { Event } from '../src/ingest/event.ts';
import { withTagwarden } from './helpers.ts';

/**
 * The real @segment/analytics-node (a devDependency) pointed at Tagwarden on 127.0.0.1, as a
 * server-side user would (`host`): every call it offers, for an anonymous visitor and for a known
 * user, is accepted and reaches a fake vendor through the webhook destination.
 */
describe('@segment/analytics-node against Tagwarden', () => {
  const ctx = withTagwarden((vendorUrl) => ({
    site: { id: 'shop', dataControlMode: 'disabled', categories: { analytics: {} } },
    destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendorUrl}/hook` } }],
  }));

  /** Runs one library call and resolves with the event it sent, or rejects with its delivery error. */
  function sent(call: (done: (err?: unknown, c?: Context) => void) => void): Promise<Context> {
    return new Promise((resolve, reject) => {
      call((err, c) => (err === undefined && c !== undefined ? resolve(c) : reject(err instanceof Error ? err : new Error(String(err)))));
    });
  }

  it('delivers track, page, screen, identify, group and alias, anonymous and with a userId', async () => {
    const errors: unknown[] = [];
    const analytics = new Analytics({ writeKey: 'test-write-key', host: ctx.tw.url, flushAt: 1, flushInterval: 10, maxRetries: 0 });
    analytics.on('error', (e) => errors.push(e));
    const anon = { anonymousId: 'node-anon-1' };
    const user = { userId: 'node-user-1' };
    const contexts = await Promise.all([
      sent((cb) => analytics.track({ ...anon, event: 'Order Completed', properties: { order_id: 'o-1', total: 42.5, coupon: null } }, cb)),
      sent((cb) => analytics.track({ ...user, event: 'Signed Up', properties: { plan: 'pro' } }, cb)),
      sent((cb) => analytics.page({ ...anon, category: 'Docs', name: 'Setup', properties: { url: 'https://www.example.com/docs/setup' } }, cb)),
      sent((cb) => analytics.page({ ...user }, cb)),
      sent((cb) => analytics.screen({ ...user, name: 'Home' }, cb)),
      sent((cb) => analytics.identify({ ...anon, traits: { newsletter: true } }, cb)),
      sent((cb) => analytics.identify({ ...user, traits: { email: 'jane@example.com', phone: null } }, cb)),
      sent((cb) => analytics.group({ ...user, groupId: 'group-1', traits: { name: 'Initech' } }, cb)),
      sent((cb) => analytics.alias({ userId: 'node-user-1', previousId: 'node-anon-1' }, cb)),
    ]);
    await analytics.closeAndFlush({ timeout: 5000 });
    expect(errors).toEqual([]);

    await ctx.tw.app.flush(5000);
    const delivered = new Map(ctx.vendor.hits.flatMap((h) => (h.body as { batch: Event[] }).batch).map((e) => [e.messageId, e]));
    for (const c of contexts) {
      const e = delivered.get(c.event.messageId ?? '');
      expect(e, `${c.event.type} ${String(c.event.messageId)}`).toBeDefined();
      expect(e?.type).toBe(c.event.type);
      expect(e?.userId ?? e?.anonymousId).toBeDefined();
    }
    const page = delivered.get(contexts[2]?.event.messageId ?? '');
    expect(page).toMatchObject({ type: 'page', name: 'Setup', anonymousId: 'node-anon-1', properties: { category: 'Docs' } });
    expect(delivered.get(contexts[8]?.event.messageId ?? '')).toMatchObject({ type: 'alias', userId: 'node-user-1', previousId: 'node-anon-1' });
    expect(delivered.get(contexts[0]?.event.messageId ?? '')?.context).toMatchObject({ library: { name: '@segment/analytics-node' } });
  });
});
