import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/** Issue 15: each event × destination is counted once; received = decided (forward, redact, drop, failed) + held now (docs/monitoring.md). */
describe('counts that add up', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let writer: string;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        hold: { maxEvents: 100, maxAgeMs: 60_000 },
        destinations: [
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'], whenUnknown: 'hold' } },
          { id: 'red', template: 'webhook', settings: { url: `${vendor.url}/red` }, consent: { categories: ['analytics'], whenUnknown: 'redact' } },
        ],
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
      }),
      undefined,
      { db, consentClock: clock },
    );
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  const track = (messageId: string, anonymousId: string, analytics?: boolean) =>
    post(`${tw.url}/v1/track`, { messageId, event: 'x', anonymousId, ...(analytics === undefined ? {} : { context: { consent: { categoryPreferences: { analytics } } } }) });
  const settle = async () => {
    await tw.app.flush(5000);
    await tw.app.flush(5000);
  };
  /** Sum of a metric's series whose labels contain every `labels` pair. */
  const sum = (text: string, name: string, labels: string[] = []): number =>
    [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].filter((m) => labels.every((l) => m[1]!.includes(l))).reduce((a, m) => a + Number(m[2]), 0);
  const check = async (held: { stats: number; red: number }) => {
    const text = await (await fetch(`${tw.url}/metrics`)).text();
    const received = sum(text, 'tagwarden_events_received_total') - sum(text, 'tagwarden_events_rejected_total', ['client="journal"']);
    for (const d of ['stats', 'red'] as const) {
      const decided = sum(text, 'tagwarden_decisions_total', [`destination="${d}"`]);
      const heldNow = sum(text, 'tagwarden_held_events', [`destination="${d}"`]);
      expect(heldNow, d).toBe(held[d]);
      expect(decided + heldNow, d).toBe(received);
    }
    return text;
  };

  it('granted, denied, redacted, held then granted, denied or expired: every destination adds up, each event counted once', async () => {
    expect((await track('m-g', 'v-g', true)).status).toBe(200);
    expect((await track('m-d', 'v-d', false)).status).toBe(200);
    for (const v of ['grant', 'deny', 'exp']) expect((await track(`m-${v}`, `v-${v}`)).status).toBe(200);
    await settle();
    // The three without consent: held for stats, redacted for red.
    await check({ stats: 3, red: 0 });
    expect((await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-grant', categories: { analytics: true } }, { 'x-api-key': writer })).status).toBe(200);
    expect((await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-deny', categories: { analytics: false } }, { 'x-api-key': writer })).status).toBe(200);
    await settle();
    await check({ stats: 1, red: 0 });
    clock.advance(60_000);
    await settle();
    const text = await check({ stats: 0, red: 0 });
    // Held then decided: counted once, by the final decision.
    expect(sum(text, 'tagwarden_decisions_total', ['destination="stats"', 'outcome="forward"'])).toBe(2);
    expect(sum(text, 'tagwarden_decisions_total', ['destination="stats"', 'outcome="drop"', 'reason="consent_denied:analytics"'])).toBe(2);
    expect(sum(text, 'tagwarden_decisions_total', ['destination="stats"', 'reason="consent_unresolved"'])).toBe(1);
    expect(sum(text, 'tagwarden_decisions_total', ['destination="red"', 'outcome="redact"'])).toBe(3);
    expect(sum(text, 'tagwarden_holds_started_total', ['destination="stats"'])).toBe(3);
    expect(text).not.toContain('outcome="hold"');
  });
});
