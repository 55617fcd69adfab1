import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import type { Db } from '../src/store/db.ts';
import { openDb } from '../src/store/open.ts';
import { forEachEngine } from './engines.ts';
import { NO_CONSENT, startFakeVerifyServer } from './fixtures/upstream/fake-verify-server.ts';
import { post, startTagwarden, startVendor, testConfig, upstreamVerify } from './helpers.ts';

/**
 * Issue 16: several instances on one store share their limits. Two Tagwarden instances on one
 * PostgreSQL, each with its own connection pool, as two machines would be:
 * - the upstream verify budget (requestsPerMinute) is the fleet's: many cache-missing hits through
 *   both make at most the plan's requests in total (the hits arrive within seconds, so "in any
 *   60 s window" is "in total"; the sliding of the window is src/store/rate-limits.test.ts's, on a
 *   driven clock);
 * - with api.rateLimit.scope: fleet, one API key's requests through both are limited by one bucket
 *   (their clocks frozen: no refill, so exactly `burst` pass).
 * Each has its counterpart with the per-instance scope, which allows twice as much.
 */
forEachEngine('two instances on one store share their limits', (engine) => {
  if (engine.name !== 'postgres') {
    // Worker processes on one SQLite file (server.workers): two processes taking grants at once.
    it('the verify budget on one SQLite file: two processes taking grants at once get the limit in total', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-shared-limits-'));
      try {
        const file = join(dir, 'store.db');
        // Created and migrated once, so the workers do not race the migrations.
        await (await openDb(`sqlite:${file}`)).close();
        const run = promisify(execFile);
        const worker = () => run(process.execPath, ['test/fixtures/store/take-grants.ts', file, '200', '10', '1000000'], { timeout: 30_000 });
        const outs = await Promise.all([worker(), worker()]);
        const granted = outs.map((o) => Number(o.stdout.trim()));
        expect(granted[0]! + granted[1]!).toBe(10);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    return;
  }
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function twoInstances(raw: (vendorUrl: string) => Record<string, unknown>, clock?: FakeClock) {
    const dbA = await engine.open();
    const dbB: Db = await openDb(engine.url());
    const vendor = await startVendor();
    const config = testConfig(raw(vendor.url));
    const extra = clock === undefined ? {} : { consentClock: clock };
    const a = await startTagwarden(config, undefined, { db: dbA, ...extra });
    const b = await startTagwarden(config, undefined, { db: dbB, ...extra });
    cleanup.push(
      () => dbB.close(),
      () => dbA.close(),
      () => vendor.close(),
      () => a.close(),
      () => b.close(),
    );
    return { a, b, dbA };
  }

  async function verifyCalls(budgetScope: 'fleet' | 'instance'): Promise<{ calls: number; perInstance: [number, number] }> {
    const upstream = await startFakeVerifyServer(() => ({ status: 200, body: NO_CONSENT }));
    cleanup.push(() => upstream.close());
    const { a, b } = await twoInstances((vendorUrl) => ({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
      identity: { visitorId: [{ body: 'anonymousId' }] },
      upstream: { verify: upstreamVerify(upstream.url, { requestsPerMinute: 10, budgetScope, categories: { analytics: 'analytics' } }) },
      destinations: [{ id: 'stats', template: 'webhook', settings: { url: `${vendorUrl}/stats` }, consent: { categories: ['analytics'] } }],
    }));
    // 60 cold visitors, each hit alternately on A and B, all at once: every one a cache miss.
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const r = await post(`${(i % 2 === 0 ? a : b).url}/v1/track`, { messageId: `m${i}`, event: 'x', anonymousId: `visitor-${i}` });
        expect(r.status).toBe(200);
      }),
    );
    await Promise.all([a.app.flush(5000), b.app.flush(5000)]);
    const callsOf = async (url: string) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return [...text.matchAll(/tagwarden_upstream_verify_calls_total\{[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    };
    return { calls: upstream.hits.length, perInstance: [await callsOf(a.url), await callsOf(b.url)] };
  }

  it('the verify budget: at most requestsPerMinute calls upstream in total, whichever instance makes them', async () => {
    const { calls, perInstance } = await verifyCalls('fleet');
    expect(calls).toBe(10);
    expect(perInstance[0] + perInstance[1]).toBe(10);
  });

  it('budgetScope: instance, for contrast: each instance spends its own budget', async () => {
    const { calls, perInstance } = await verifyCalls('instance');
    expect(calls).toBe(20);
    expect(perInstance).toEqual([10, 10]);
  });

  async function apiStatuses(scope: 'fleet' | 'instance'): Promise<number[]> {
    const clock = new FakeClock(Date.now());
    const { a, b, dbA } = await twoInstances(
      () => ({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        api: { rateLimit: { perSecond: 1, burst: 5, scope } },
        destinations: [],
      }),
      clock,
    );
    const { key } = await createApiKey(dbA, { label: 'reader', scopes: ['consent:read'] });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`${(i % 2 === 0 ? a : b).url}/api/v1/subjects/visitor/v-${i}`, { headers: { 'x-api-key': key } });
      await r.arrayBuffer();
      statuses.push(r.status);
    }
    return statuses;
  }

  it('api.rateLimit.scope: fleet: one key through both instances gets burst + refill in total (the clock frozen: burst)', async () => {
    const statuses = await apiStatuses('fleet');
    expect(statuses.filter((s) => s !== 429)).toHaveLength(5);
    // The ones let through are answered (an unknown subject: 404), none failed.
    expect(statuses.filter((s) => s !== 429 && s >= 500)).toEqual([]);
  });

  it('api.rateLimit.scope: instance, for contrast: each instance has its own bucket', async () => {
    const statuses = await apiStatuses('instance');
    expect(statuses.filter((s) => s !== 429)).toHaveLength(10);
  });
});
