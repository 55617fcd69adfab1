import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_SIGNALS } from '../src/consent/signals.ts';
import type { ConsentState } from '../src/consent/state.ts';
import type { Event } from '../src/ingest/event.ts';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * A hit's own consent, resolved once at the answer (the visitor cookie needs it), is what the
 * pipeline decides with: process() reuses it rather than resolving the same signals again.
 */
describe('pipeline.process with the hit consent already resolved', () => {
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;

  beforeAll(async () => {
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } }],
      }),
    );
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  const event = (id: string): Event => ({ messageId: id, type: 'track', event: 'x', timestamp: '2026-11-23T10:00:00.000Z', receivedAt: '2026-11-23T10:00:00.000Z', context: {}, properties: {}, traits: {}, integrations: {} });
  const granted: ConsentState = { categories: { analytics: { status: 'granted', source: 'segment' } }, preferencesPresent: true };

  it('decides with the given state; without one it resolves the event (nothing known: dropped in opt-in)', async () => {
    tw.app.pipeline.process(event('given'), NO_SIGNALS, granted);
    tw.app.pipeline.process(event('resolved'), NO_SIGNALS);
    await tw.app.flush(2_000);
    expect(vendor.hits).toHaveLength(1);
    expect(JSON.stringify(vendor.hits[0]!.body)).toContain('given');
    expect(JSON.stringify(vendor.hits[0]!.body)).not.toContain('resolved');
  });
});
