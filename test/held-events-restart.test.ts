import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { journalSize } from '../src/store/journal.ts';
import { openDb } from '../src/store/open.ts';
import { CONSENT, startFakeVerifyServer, type VerifyAction } from './fixtures/upstream/fake-verify-server.ts';
import { post, startTagwarden, startVendor, testConfig, upstreamVerify } from './helpers.ts';

/**
 * Held events are held in the journal, not only in memory (issue 11): an event held for consent
 * (`whenUnknown: hold`) while the upstream verify API refuses keeps its hold's deadline across a
 * restart. Two Tagwardens one after the other on the same SQLite file and one hand-driven clock:
 * held at t0 with `hold.maxAgeMs` 10 s, stopped at t0 + 3 s, started again at t0 + 5 s. A restart
 * never extends a hold: still refused, the events are dropped at t0 + 10 s (a fresh hold would
 * have lasted until t0 + 15 s); granted after the restart, they are delivered; denied, never.
 */

const GRANT = { ...CONSENT, categories: { necessary: true, analytics: true, marketing: true, functional: true } };
const DENY = { ...CONSENT, categories: { necessary: true, analytics: false, marketing: false, functional: false } };
const REFUSE: VerifyAction = { status: 429, headers: { 'retry-after': '2' }, body: '{"error":"rate limited"}' };
const MAX_AGE = 10_000;

describe('held events across a restart', () => {
  const cleanup: (() => Promise<void>)[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function setup(answer: (visitorId: string, now: number) => VerifyAction) {
    const dir = mkdtempSync(join(tmpdir(), 'tw-held-restart-'));
    dirs.push(dir);
    const storeUrl = `sqlite:${join(dir, 'tagwarden.db')}`;
    const clock = new FakeClock(Date.now());
    const upstream = await startFakeVerifyServer((hit) => answer(hit.visitorId, clock.now()), { now: () => clock.now() });
    const vendor = await startVendor();
    cleanup.push(() => upstream.close(), vendor.close);
    const config = testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { saleOrShare: true }, analytics: {} } },
      identity: { visitorId: [{ body: 'anonymousId' }] },
      hold: { maxAgeMs: MAX_AGE },
      store: { url: storeUrl },
      upstream: {
        verify: upstreamVerify(upstream.url),
      },
      destinations: [
        { id: 'ads', template: 'webhook', settings: { url: `${vendor.url}/ads` }, consent: { categories: ['advertising'], whenUnknown: 'hold' } },
        { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } },
      ],
    });

    /** One Tagwarden on the store file, on the shared clock. */
    async function start() {
      const db: Db = await openDb(storeUrl);
      const tw = await startTagwarden(config, undefined, { db, consentClock: clock });
      let stopped = false;
      const stop = async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        await tw.close();
        await db.close();
      };
      cleanup.push(stop);
      const metric = async (name: string, labels: string): Promise<number> => {
        const text = await (await fetch(`${tw.url}/metrics`)).text();
        return [...text.matchAll(new RegExp(`${name}\\{([^}]*)\\} (\\d+)`, 'g'))].filter((m) => labels.split(',').every((l) => m[1]!.includes(l))).reduce((n, m) => n + Number(m[2]), 0);
      };
      /** Moves the shared clock to `at` in steps, letting lookups and deliveries finish after each. */
      const advanceTo = async (at: number, stepMs = 500): Promise<void> => {
        while (clock.now() < at) {
          clock.advance(Math.min(stepMs, at - clock.now()));
          await tw.app.flush(5000);
        }
      };
      const unresolved = () => metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_unresolved"');
      const work = () => db.all<{ destination_id: string; state: string; not_before: number }>('SELECT destination_id, state, not_before FROM journal_work ORDER BY hit_id');
      return { tw, db, stop, advanceTo, unresolved, work, metric };
    }

    const delivered = (path: string): string[] =>
      vendor.hits.filter((h) => h.path === path).flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId)).sort();
    const send = async (url: string, messageId: string, visitor: string): Promise<void> => {
      const r = await post(`${url}/v1/track`, { messageId, event: 'Order Completed', anonymousId: visitor, timestamp: new Date(clock.now()).toISOString() });
      expect(r.status).toBe(200);
    };
    return { clock, upstream, delivered, send, start, storeUrl };
  }

  /** Held at t0 by the first instance, which is stopped at t0 + 3 s; the second starts at t0 + 5 s. */
  async function heldThenRestarted(s: Awaited<ReturnType<typeof setup>>, visitors: string[]) {
    const t0 = s.clock.now();
    const first = await s.start();
    for (const v of visitors) for (let i = 0; i < 2; i++) await s.send(first.tw.url, `${v}-${i}`, v);
    await first.tw.app.flush(5000);
    expect(first.tw.app.pending.size).toBe(2 * visitors.length);
    await first.advanceTo(t0 + 3_000);
    expect(first.tw.app.pending.size).toBe(2 * visitors.length);
    await first.stop();
    // The journal keeps each hold with its deadline (the whenUnknown: drop destination was dropped at the first refusal).
    const db = await openDb(s.storeUrl);
    try {
      const rows = await db.all<{ destination_id: string; state: string; not_before: number | bigint }>('SELECT destination_id, state, not_before FROM journal_work');
      expect(rows).toHaveLength(2 * visitors.length);
      expect(rows.every((r) => r.destination_id === 'ads' && r.state === 'held' && Number(r.not_before) === t0 + MAX_AGE)).toBe(true);
    } finally {
      await db.close();
    }
    s.clock.advance(2_000);
    const second = await s.start();
    await second.tw.app.flush(5000);
    return { t0, second };
  }

  it('upstream still refusing after the restart: dropped as consent_unresolved at t0 + maxAgeMs, not later; never forwarded', async () => {
    const s = await setup(() => REFUSE);
    const { t0, second } = await heldThenRestarted(s, ['a', 'b', 'c']);
    // Asked again after the restart, refused again: still held.
    expect(second.tw.app.pending.size).toBe(6);
    expect(s.upstream.hits.filter((h) => h.at >= t0 + 5_000).length).toBeGreaterThan(0);
    await second.advanceTo(t0 + MAX_AGE - 1);
    expect(second.tw.app.pending.size).toBe(6);
    expect(await second.unresolved()).toBe(0);
    await second.advanceTo(t0 + MAX_AGE);
    expect(second.tw.app.pending.size).toBe(0);
    expect(await second.unresolved()).toBe(6);
    expect(s.delivered('/ads')).toEqual([]);
    expect(await second.work()).toEqual([]);
    await second.stop();
    const db = await openDb(s.storeUrl);
    try {
      expect(await journalSize(db, 'shop')).toEqual({ hits: 0, bytes: 0, dead: 0 });
    } finally {
      await db.close();
    }
  });

  it('upstream granting after the restart: every held event of a granting visitor delivered, a denying visitor\'s never', async () => {
    let restartedAt = Number.POSITIVE_INFINITY;
    const s = await setup((visitor, now) => (now < restartedAt ? REFUSE : { status: 200, body: visitor.startsWith('grant') ? GRANT : DENY }));
    restartedAt = s.clock.now() + 5_000;
    const { t0, second } = await heldThenRestarted(s, ['grant-a', 'grant-b', 'deny-c']);
    await second.advanceTo(t0 + 6_000);
    expect(s.delivered('/ads')).toEqual(['grant-a-0', 'grant-a-1', 'grant-b-0', 'grant-b-1']);
    expect(await second.metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_denied:advertising"')).toBe(2);
    await second.advanceTo(t0 + 2 * MAX_AGE);
    expect(s.delivered('/ads')).toEqual(['grant-a-0', 'grant-a-1', 'grant-b-0', 'grant-b-1']);
    expect(await second.unresolved()).toBe(0);
    expect(await second.work()).toEqual([]);
  });

  it('a hold that ran out while the process was down is dropped at the start, the upstream not asked for it', async () => {
    const s = await setup(() => REFUSE);
    const t0 = s.clock.now();
    const first = await s.start();
    await s.send(first.tw.url, 'late-0', 'late');
    await first.tw.app.flush(5000);
    await first.stop();
    const asked = s.upstream.hits.length;
    s.clock.advance(MAX_AGE);
    const second = await s.start();
    await second.tw.app.flush(5000);
    expect(s.clock.now()).toBe(t0 + MAX_AGE);
    expect(await second.unresolved()).toBe(1);
    expect(s.upstream.hits).toHaveLength(asked);
    expect(s.delivered('/ads')).toEqual([]);
    expect(await second.work()).toEqual([]);
  });
});
