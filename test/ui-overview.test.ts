import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Issue 15: the dashboard's overview and /metrics agree. Real hits through the app (the harness of
 * test/counts-add-up.test.ts): granted, denied, redacted, held then granted / denied / expired, a
 * vendor that refuses (dead letters) and one that asks for a retry; the overview's totals equal the
 * counters /metrics shows, and received = forwarded + redacted + filtered + held + failed.
 */
const ADMIN_KEY = 'admin-key-0123456789abcdef';
const SERIES = ['received', 'forwarded', 'redacted', 'filtered', 'failed', 'held', 'retried', 'dead', 'delivered', 'revoked'] as const;

describe('dashboard overview = metrics', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let writer: string;
  let auth: { cookie: string; csrf: string };
  // On a 15 s boundary, so the buckets the test fills are known.
  const clock = new FakeClock(Math.floor(Date.now() / 720_000) * 720_000);
  let flaky = 0;

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    vendor = await startVendor((hit) => {
      if (hit.path.startsWith('/down')) return { status: 400, body: '{"error":"bad"}' };
      if (hit.path.startsWith('/flaky') && flaky++ === 0) return { status: 503, body: '{}' };
      return { status: 200, body: '{}' };
    });
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        hold: { maxEvents: 100, maxAgeMs: 60_000 },
        destinations: [
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'], whenUnknown: 'hold' } },
          { id: 'red', template: 'webhook', settings: { url: `${vendor.url}/red` }, consent: { categories: ['analytics'], whenUnknown: 'redact' } },
          { id: 'down', template: 'webhook', settings: { url: `${vendor.url}/down` }, consent: { categories: ['analytics'], whenUnknown: 'drop' } },
          { id: 'flaky', template: 'webhook', settings: { url: `${vendor.url}/flaky` }, consent: { categories: ['analytics'], whenUnknown: 'drop' } },
        ],
        delivery: { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 3 },
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
        debug: { adminKey: ADMIN_KEY },
      }),
      undefined,
      { db, consentClock: clock },
    );
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
    const login = await request(tw.url).post('/ui/login').send({ key: ADMIN_KEY }).expect(303);
    const cookie = ([] as string[]).concat(login.headers['set-cookie'] ?? [])[0]!.split(';', 1)[0]!;
    auth = { cookie, csrf: (await request(tw.url).get('/ui/api/session').set('Cookie', cookie).expect(200)).body.csrf };
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
  /** Time passes a sampling tick (15 s) at a time, each sample read before the next tick. */
  const pass = async (ms: number) => {
    for (let t = 0; t < ms; t += 15_000) {
      clock.advance(15_000);
      await new Promise((r) => setImmediate(r));
    }
  };
  /** Sum of a metric's series whose labels contain every `labels` pair. */
  const sum = (text: string, name: string, labels: string[] = []): number =>
    [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].filter((m) => labels.every((l) => m[1]!.includes(l))).reduce((a, m) => a + Number(m[2]), 0);
  const overview = async (window: string) => (await request(tw.url).get(`/ui/api/overview?window=${window}`).set('Cookie', auth.cookie).set('X-CSRF-Token', auth.csrf).expect(200)).body;

  it('per destination the overview totals are the counters in /metrics, and every bucket adds up', async () => {
    expect((await track('m-g', 'v-g', true)).status).toBe(200);
    expect((await track('m-d', 'v-d', false)).status).toBe(200);
    for (const v of ['grant', 'deny', 'exp']) expect((await track(`m-${v}`, `v-${v}`)).status).toBe(200);
    await settle();
    await pass(15_000);
    expect((await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-grant', categories: { analytics: true } }, { 'x-api-key': writer })).status).toBe(200);
    expect((await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-deny', categories: { analytics: false } }, { 'x-api-key': writer })).status).toBe(200);
    await settle();
    await pass(15_000);
    // One still held when the overview is first read: the identity holds with held > 0.
    const mid = await overview('15m');
    const midStats = mid.destinations.find((d: { id: string }) => d.id === 'stats');
    expect(midStats.totals.held).toBe(1);
    expect(midStats.heldNow).toBe(1);
    await pass(60_000);
    await settle();

    const text = await (await fetch(`${tw.url}/metrics`)).text();
    const received = sum(text, 'tagwarden_events_received_total') - sum(text, 'tagwarden_events_rejected_total', ['client="journal"']);
    expect(received).toBe(5);
    for (const window of ['15m', '1h', '6h', '24h']) {
      const o = await overview(window);
      expect(o.window).toBe(window);
      expect(o.destinations.map((d: { id: string }) => d.id)).toEqual(['stats', 'red', 'down', 'flaky']);
      for (const d of o.destinations) {
        const dest = `destination="${d.id}"`;
        const expected = {
          forwarded: sum(text, 'tagwarden_decisions_total', [dest, 'outcome="forward"']),
          redacted: sum(text, 'tagwarden_decisions_total', [dest, 'outcome="redact"']),
          filtered: sum(text, 'tagwarden_decisions_total', [dest, 'outcome="drop"']),
          failed: sum(text, 'tagwarden_decisions_total', [dest, 'outcome="failed"']),
          held: sum(text, 'tagwarden_held_events', [dest]),
          retried: sum(text, 'tagwarden_deliveries_total', [dest, 'outcome="retry_scheduled"']),
          dead: sum(text, 'tagwarden_deliveries_total', [dest, 'outcome="failed"']),
          delivered: sum(text, 'tagwarden_deliveries_total', [dest, 'outcome="delivered"']),
          revoked: sum(text, 'tagwarden_deliveries_total', [dest, 'outcome="dropped"']),
        };
        expect(d.totals, `${window} ${d.id}`).toEqual({ ...expected, received });
        expect(d.totals.received).toBe(d.totals.forwarded + d.totals.redacted + d.totals.filtered + d.totals.held + d.totals.failed);
        for (const [reason, n] of Object.entries(d.filteredReasons)) expect(n).toBe(sum(text, 'tagwarden_decisions_total', [dest, 'outcome="drop"', `reason="${reason}"`]));
        expect(Object.values(d.filteredReasons as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(d.totals.filtered);
        for (const k of SERIES) expect((d.series[k] as number[]).reduce((a, b) => a + b, 0), `${window} ${d.id} ${k}`).toBe(d.totals[k]);
        for (let i = 0; i < o.buckets.length; i++) {
          const s = d.series;
          expect(s.received[i]).toBe(s.forwarded[i] + s.redacted[i] + s.filtered[i] + s.held[i] + s.failed[i]);
        }
      }
    }
    // What happened where: the counts the scenario implies, as the dashboard shows them.
    const o = await overview('15m');
    const by = Object.fromEntries(o.destinations.map((d: { id: string }) => [d.id, d]));
    expect(by.stats.totals).toMatchObject({ received: 5, forwarded: 2, filtered: 3, held: 0 });
    expect(by.stats.filteredReasons).toEqual({ 'consent_denied:analytics': 2, consent_unresolved: 1 });
    expect(by.red.totals).toMatchObject({ forwarded: 1, redacted: 3, filtered: 1 });
    expect(by.down.totals).toMatchObject({ forwarded: 1, dead: 1, delivered: 0 });
    expect(by.flaky.totals).toMatchObject({ forwarded: 1, retried: 1, delivered: 1 });
    // The 15-second buckets (90 s passed: the hits are 7th from the end): the hits held in the
    // first, two of them decided in the next (received 0 there: one forward, one drop, held -2).
    expect(by.stats.series.received.slice(-7, -5)).toEqual([5, 0]);
    expect(by.stats.series.held.slice(-7, -5)).toEqual([3, -2]);
    expect(by.stats.series.forwarded.slice(-7, -5)).toEqual([1, 1]);
    expect(by.stats.series.received.slice(0, -7).every((n: number) => n === 0)).toBe(true);
    // The dead letter, through the same session.
    const dead = await request(tw.url).get('/api/v1/deliveries/dead').set('Cookie', auth.cookie).set('X-CSRF-Token', auth.csrf).expect(200);
    expect(dead.body.deadLetters).toEqual([expect.objectContaining({ destinationId: 'down' })]);
  });

  it('an unknown window is a 400', async () => {
    const res = await request(tw.url).get('/ui/api/overview?window=7d').set('Cookie', auth.cookie).set('X-CSRF-Token', auth.csrf);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('TW_ERR_VALIDATION');
  });
});
