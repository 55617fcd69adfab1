import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.ts';
import { openDb } from '../src/store/open.ts';
import { createApiKey } from '../src/api/keys.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { createReceiptWriter } from '../src/receipts/writer.ts';
import type { Receipt } from '../src/receipts/receipt.ts';
import type { Db } from '../src/store/db.ts';
import { insertReceipts, pruneReceipts, queryReceipts } from '../src/store/receipts.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/** Issue 15: every event × destination decision leaves a receipt that explains it (docs/receipts.md). */
forEachEngine('decision receipts', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let writer: string;
  let auditor: string;

  beforeAll(async () => {
    db = await engine.open();
    vendor = await startVendor();
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        destinations: [
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'], whenUnknown: 'hold' } },
          { id: 'red', template: 'webhook', settings: { url: `${vendor.url}/red` }, consent: { categories: ['analytics'], whenUnknown: 'redact' } },
        ],
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
        receipts: { enabled: true },
      }),
      undefined,
      { db },
    );
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write'] })).key;
    auditor = (await createApiKey(db, { label: 'auditor', scopes: ['audit:read'] })).key;
  });

  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
  });

  const track = (messageId: string, anonymousId: string, extra: Record<string, unknown> = {}) =>
    fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageId, event: 'x', anonymousId, ...extra }) });
  const prefs = (analytics: boolean) => ({ context: { consent: { categoryPreferences: { analytics } } } });
  const settle = async () => {
    await tw.app.flush(5000);
    await tw.app.flush(5000);
  };
  const receipts = async (query: string): Promise<Receipt[]> => {
    const res = await fetch(`${tw.url}/api/v1/receipts?${query}`, { headers: { 'x-api-key': auditor } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { receipts: Receipt[] }).receipts;
  };

  it('a granted and a denied event: the outcome, its reason and the signal that decided it', async () => {
    expect((await track('m-granted', 'v-granted', prefs(true))).status).toBe(200);
    expect((await track('m-denied', 'v-denied', prefs(false))).status).toBe(200);
    await settle();
    const granted = await receipts('visitorId=v-granted');
    expect(granted.map((r) => [r.destinationId, r.phase, r.outcome, r.reason])).toEqual([
      ['stats', 'decided', 'forward', 'consent_granted:analytics'],
      ['red', 'decided', 'forward', 'consent_granted:analytics'],
    ]);
    expect(granted[0]).toMatchObject({ messageId: 'm-granted', visitorId: 'v-granted', mode: { mode: 'opt-in', rule: 'site' }, consent: { analytics: { status: 'granted', source: 'segment' } }, signals: { gpc: false, preferences: true } });
    const denied = await receipts('visitorId=v-denied');
    expect(denied.map((r) => [r.destinationId, r.outcome, r.reason])).toEqual([
      ['stats', 'drop', 'consent_denied:analytics'],
      ['red', 'drop', 'consent_denied:analytics'],
    ]);
    // No event data in a receipt: ids, signal sources and reasons only.
    expect(JSON.stringify(denied)).not.toContain('"properties"');
  });

  it('a redacted event, and a held event granted later: each step has its receipt', async () => {
    expect((await track('m-held', 'v-held')).status).toBe(200);
    await settle();
    let got = await receipts('visitorId=v-held');
    // Nothing in the hit: both wait for the store; its answer (nothing stored) redacts one and keeps the other held.
    expect(got.map((r) => [r.destinationId, r.phase, r.outcome, r.reason])).toEqual([
      ['stats', 'decided', 'hold', 'consent_resolving'],
      ['red', 'decided', 'hold', 'consent_resolving'],
      ['stats', 'held_decided', 'hold', 'consent_unknown:analytics'],
      ['red', 'held_decided', 'redact', 'consent_unknown:analytics'],
    ]);
    expect(got[3]).toMatchObject({ joined: { source: 'store:none' }, rules: ['consent_unknown:analytics'] });
    // The grant arrives through the API: the held event is decided again, and says so.
    const push = await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-held', categories: { analytics: true } }, { 'x-api-key': writer });
    expect(push.status).toBe(200);
    await settle();
    got = await receipts('visitorId=v-held');
    expect(got.slice(4).map((r) => [r.destinationId, r.phase, r.outcome, r.reason, r.joined?.source])).toEqual([['stats', 'held_decided', 'forward', 'consent_granted:analytics', 'store']]);
    expect(got[4]?.consent?.analytics).toMatchObject({ status: 'granted', source: 'store' });
  });

  it('exports as NDJSON (the export route and Accept), needs audit:read, and refuses a query without a subject', async () => {
    for (const [path, headers] of [
      ['/api/v1/receipts/export?visitorId=v-denied', {}],
      ['/api/v1/receipts?visitorId=v-denied', { accept: 'application/x-ndjson' }],
    ] as const) {
      const res = await fetch(`${tw.url}${path}`, { headers: { 'x-api-key': auditor, ...headers } });
      expect(res.headers.get('content-type')).toContain('application/x-ndjson');
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Receipt);
      expect(lines.map((r) => r.destinationId)).toEqual(['stats', 'red']);
    }
    expect((await fetch(`${tw.url}/api/v1/receipts?visitorId=v-denied`, { headers: { 'x-api-key': writer } })).status).toBe(403);
    expect((await fetch(`${tw.url}/api/v1/receipts`, { headers: { 'x-api-key': auditor } })).status).toBe(400);
    const page = await fetch(`${tw.url}/api/v1/receipts?visitorId=v-held&limit=2`, { headers: { 'x-api-key': auditor } });
    const first = (await page.json()) as { receipts: Receipt[]; nextCursor?: string };
    expect(first.receipts).toHaveLength(2);
    expect(first.nextCursor).toBeDefined();
  });

  it('retention prunes by age (on the injected clock) and by row count', async () => {
    const own = await engine.open();
    try {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const r = (messageId: string): Receipt => ({ decidedAt: clock.now(), messageId, destinationId: 'd', visitorId: 'v-ret', phase: 'decided', outcome: 'drop', reason: 'consent_denied:analytics', rules: [] });
      const w = createReceiptWriter({ write: (b) => insertReceipts(own, 'shop', b), prune: () => pruneReceipts(own, clock.now(), 1, 3), clock, flushMs: 1000, pruneEveryMs: 0, maxBuffer: 100, onDrop: () => undefined, onError: (e) => { throw e; } });
      w.record(r('old'));
      await w.flush();
      clock.advance(2 * 86_400_000);
      for (const id of ['a', 'b', 'c', 'd']) w.record(r(id));
      await w.close();
      const left = await queryReceipts(own, { siteId: 'shop', visitorId: 'v-ret' }, 100);
      expect(left.receipts.map((x) => x.messageId)).toEqual(['b', 'c', 'd']);
    } finally {
      await own.close();
    }
  });
});

describe('the receipt writer', () => {
  it('writes on its timer, and counts what a full buffer drops instead of blocking', async () => {
    const clock = new FakeClock(0);
    const written: string[][] = [];
    const dropped: string[] = [];
    const w = createReceiptWriter({
      write: (b) => {
        written.push(b.map((r) => r.messageId));
        return Promise.resolve();
      },
      prune: () => Promise.resolve(),
      clock,
      flushMs: 1000,
      pruneEveryMs: 60_000,
      maxBuffer: 2,
      onDrop: (reason, n) => dropped.push(`${reason}:${String(n)}`),
      onError: () => undefined,
    });
    const r = (messageId: string): Receipt => ({ decidedAt: 0, messageId, destinationId: 'd', phase: 'decided', outcome: 'forward', reason: 'not_gated', rules: [] });
    for (const id of ['a', 'b', 'c']) w.record(r(id));
    expect(dropped).toEqual(['buffer_full:1']);
    expect(written).toEqual([]);
    clock.advance(1000);
    await w.flush();
    expect(written).toEqual([['a', 'b']]);
  });
});

describe('tagwarden receipts <visitor>', () => {
  it("prints a visitor's receipts, one line each, or as JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-receipts-'));
    try {
      const url = `sqlite:${join(dir, 'tw.db')}`;
      const db = await openDb(url);
      await insertReceipts(db, 'shop', [{ decidedAt: Date.UTC(2026, 0, 1), messageId: 'm1', destinationId: 'stats', visitorId: 'v-cli', phase: 'decided', outcome: 'drop', reason: 'consent_denied:analytics', rules: ['consent_denied:analytics'] }]);
      await db.close();
      let stdout = '';
      const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: () => true }, env: {} };
      expect(await runCli(['receipts', 'v-cli', '--store', url, '--site', 'shop'], io)).toBe(0);
      expect(stdout).toBe('2026-01-01T00:00:00.000Z  m1  stats  decided  drop  consent_denied:analytics\n');
      stdout = '';
      expect(await runCli(['receipts', 'v-cli', '--store', url, '--site', 'shop', '--json'], io)).toBe(0);
      expect(JSON.parse(stdout)).toEqual([expect.objectContaining({ messageId: 'm1', reason: 'consent_denied:analytics' })]);
      expect(await runCli(['receipts', '--store', url, '--site', 'shop'], io)).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
