import { describe, expect, it } from 'vitest';
import { NO_SIGNALS } from '../src/consent/signals.ts';
import type { ConsentState } from '../src/consent/state.ts';
import type { Event } from '../src/ingest/event.ts';
import { withTagwarden } from './helpers.ts';

/**
 * A hit's own consent, resolved once at the answer (the visitor cookie needs it), is what the
 * pipeline decides with: process() reuses it rather than resolving the same signals again.
 */
describe('pipeline.process with the hit consent already resolved', () => {
  const ctx = withTagwarden((url) => ({
    site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
    destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${url}/stats` }, consent: { categories: ['analytics'] } }],
  }));

  const event = (id: string): Event => ({ messageId: id, type: 'track', event: 'x', timestamp: '2026-11-23T10:00:00.000Z', receivedAt: '2026-11-23T10:00:00.000Z', context: {}, properties: {}, traits: {}, integrations: {} });
  const granted: ConsentState = { categories: { analytics: { status: 'granted', source: 'segment' } }, preferencesPresent: true };

  it('decides with the given state; without one it resolves the event (nothing known: dropped in opt-in)', async () => {
    ctx.tw.app.pipeline.process(event('given'), NO_SIGNALS, granted);
    ctx.tw.app.pipeline.process(event('resolved'), NO_SIGNALS);
    await ctx.tw.app.flush(2_000);
    expect(ctx.vendor.hits).toHaveLength(1);
    expect(JSON.stringify(ctx.vendor.hits[0]!.body)).toContain('given');
    expect(JSON.stringify(ctx.vendor.hits[0]!.body)).not.toContain('resolved');
  });
});
