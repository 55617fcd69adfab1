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
import { insertReceipts, pruneReceipts, queryReceipts, writeReceipts } from '../src/store/receipts.ts';
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
      ['stats', 'held', 'hold', 'consent_resolving'],
      ['red', 'held', 'hold', 'consent_resolving'],
      ['stats', 'held', 'hold', 'consent_unknown:analytics'],
      ['red', 'held_decided', 'redact', 'consent_unknown:analytics'],
    ]);
    expect(got[3]).toMatchObject({ joined: { source: 'store:none' }, rules: ['consent_unknown:analytics'] });
    // Nothing stored: no time (it was 0, read as 1970).
    expect(got[3]!.joined).not.toHaveProperty('at');
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

  it('a delivery result after the receipt was written updates its row (migration 11)', async () => {
    const own = await engine.open();
    try {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const of = async (): Promise<Receipt | undefined> => (await queryReceipts(own, { siteId: 'shop', visitorId: 'v-late' }, 100)).receipts[0];
      const w = createReceiptWriter({ write: (b, d) => writeReceipts(own, 'shop', b, d), prune: () => Promise.resolve(), clock, flushMs: 1000, pruneEveryMs: 60_000, maxBuffer: 100, onDrop: () => undefined, onError: (e) => { throw e; } });
      w.record({ decidedAt: clock.now(), messageId: 'm-late', destinationId: 'stats', visitorId: 'v-late', phase: 'decided', outcome: 'forward', reason: 'consent_granted:analytics', rules: [] });
      await w.flush();
      expect((await of())?.delivery).toBeUndefined(); // pending
      w.delivered({ destinationId: 'stats', messageIds: ['m-late'], outcome: 'retry_scheduled', attempt: 1, status: 503, error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, durationMs: 5 });
      await w.flush();
      expect((await of())?.delivery).toMatchObject({ status: 'retrying', attempt: 1, httpStatus: 503, code: 'TW_ERR_DELIVERY_RETRYABLE' });
      w.delivered({ destinationId: 'stats', messageIds: ['m-late'], outcome: 'delivered', attempt: 2, status: 200, durationMs: 5 });
      await w.close();
      expect((await of())?.delivery).toMatchObject({ status: 'delivered', attempt: 2, httpStatus: 200 });
    } finally {
      await own.close();
    }
  });

  it('a replayed dead letter: its new result goes on the new receipt, the first one stays dead (regression: the UPDATE matched every receipt of the pair)', async () => {
    const own = await engine.open();
    try {
      const clock = new FakeClock(Date.UTC(2026, 0, 2));
      const all = async (): Promise<Receipt[]> => (await queryReceipts(own, { siteId: 'shop', visitorId: 'v-replay' }, 100)).receipts;
      const w = createReceiptWriter({ write: (b, d) => writeReceipts(own, 'shop', b, d), prune: () => Promise.resolve(), clock, flushMs: 1000, pruneEveryMs: 60_000, maxBuffer: 100, onDrop: () => undefined, onError: (e) => { throw e; } });
      const decided = (): Receipt => ({ decidedAt: clock.now(), messageId: 'm-replay', destinationId: 'stats', visitorId: 'v-replay', phase: 'decided', outcome: 'forward', reason: 'consent_granted:analytics', rules: [] });
      w.record(decided());
      await w.flush();
      w.delivered({ destinationId: 'stats', messageIds: ['m-replay'], outcome: 'failed', attempt: 1, status: 400, error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false }, durationMs: 5 });
      await w.flush();
      // The replay: decided again, its receipt written, then the vendor takes it.
      w.record(decided());
      await w.flush();
      w.delivered({ destinationId: 'stats', messageIds: ['m-replay'], outcome: 'delivered', attempt: 1, status: 200, durationMs: 5 });
      await w.close();
      expect((await all()).map((r) => r.delivery?.status)).toEqual(['dead', 'delivered']);
    } finally {
      await own.close();
    }
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
      stdout = '';
      expect(await runCli(['receipts', 'nobody', '--store', url, '--site', 'shop'], io)).toBe(0);
      expect(stdout).toBe('no receipts for visitor nobody\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Issue 15, receipts' gaps: a hold that ends without a decision (refused, expired, at shutdown
 * without a journal) has one final receipt; a forwarded event's receipt says what became of its
 * delivery; a store answer names the profile version it was read at.
 */
describe('receipts: holds that end undecided, delivery results, the store version', () => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let writer: string;
  let auditor: string;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    // The vendor refuses one event for good (400), takes the rest.
    vendor = await startVendor((hit) => (JSON.stringify(hit.body).includes('m-rejected') ? { status: 400, body: '{"error":"bad"}' } : { status: 200, body: '{}' }));
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        // One held event at a time: the second is refused (and dropped as unresolved).
        hold: { maxEvents: 1, maxAgeMs: 60_000 },
        destinations: [
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'], whenUnknown: 'hold' } },
          { id: 'red', template: 'webhook', settings: { url: `${vendor.url}/red` }, consent: { categories: ['analytics'], whenUnknown: 'redact' } },
        ],
        delivery: { journal: { enabled: false } },
        api: { rateLimit: { perSecond: 1000, burst: 1000 } },
        receipts: { enabled: true },
      }),
      undefined,
      { db, consentClock: clock },
    );
    writer = (await createApiKey(db, { label: 'writer', scopes: ['consent:write', 'consent:read'] })).key;
    auditor = (await createApiKey(db, { label: 'auditor', scopes: ['audit:read'] })).key;
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
  // Read from the store: after the shutdown the API answers 503.
  const receiptsOf = async (visitorId: string): Promise<Receipt[]> => (await queryReceipts(db, { siteId: 'shop', visitorId }, 100)).receipts;
  const steps = (rs: Receipt[]) => rs.map((r) => [r.destinationId, r.phase, r.outcome, r.reason]);
  /** One final receipt (any phase but `held`) per event × destination. */
  const finals = (rs: Receipt[]) => {
    const keys = rs.filter((r) => r.phase !== 'held').map((r) => `${r.messageId}/${r.destinationId}`);
    expect(new Set(keys).size).toBe(keys.length);
    return keys.length;
  };

  it('a delivered event and one the vendor refuses: the receipt says delivered, or dead with the code', async () => {
    // One after the other: in one batch, the refusal would be both events'.
    expect((await track('m-ok', 'v-ok', true)).status).toBe(200);
    await settle();
    expect((await track('m-rejected', 'v-rej', true)).status).toBe(200);
    await settle();
    const ok = await receiptsOf('v-ok');
    expect(ok.map((r) => [r.destinationId, r.outcome, r.delivery?.status, r.delivery?.httpStatus])).toEqual([
      ['stats', 'forward', 'delivered', 200],
      ['red', 'forward', 'delivered', 200],
    ]);
    const bad = await receiptsOf('v-rej');
    expect(bad.map((r) => [r.destinationId, r.outcome, r.delivery?.status, r.delivery?.httpStatus, r.delivery?.code])).toEqual([
      ['stats', 'forward', 'dead', 400, 'TW_ERR_DELIVERY_REJECTED'],
      ['red', 'forward', 'dead', 400, 'TW_ERR_DELIVERY_REJECTED'],
    ]);
    // No response body in a receipt.
    expect(JSON.stringify(bad)).not.toContain('bad"');
  });

  it("a store answer names the profile version it was read at, and the item's audit row by its consent time", async () => {
    const push = await post(`${tw.url}/api/v1/consent`, { visitorId: 'v-ver', categories: { analytics: true } }, { 'x-api-key': writer });
    expect(push.status).toBe(200);
    expect((await track('m-ver', 'v-ver')).status).toBe(200);
    await settle();
    const got = await receiptsOf('v-ver');
    expect(steps(got)).toEqual([
      ['stats', 'held', 'hold', 'consent_resolving'],
      ['red', 'held', 'hold', 'consent_resolving'],
      ['stats', 'held_decided', 'forward', 'consent_granted:analytics'],
      ['red', 'held_decided', 'forward', 'consent_granted:analytics'],
    ]);
    const profile = (await (await fetch(`${tw.url}/api/v1/subjects/visitor/v-ver`, { headers: { 'x-api-key': writer } })).json()) as { version: number };
    const audit = (await (await fetch(`${tw.url}/api/v1/audit?subject=visitor:v-ver`, { headers: { 'x-api-key': auditor } })).json()) as { entries: { seq: number; item: string | null; consentAt: string | null }[] };
    const row = audit.entries.find((e) => e.item === 'analytics');
    expect(row).toBeDefined();
    expect(got[2]?.joined).toMatchObject({ source: 'store', version: profile.version });
    expect(got[2]?.consent?.analytics).toEqual({ status: 'granted', source: 'store', at: Date.parse(row?.consentAt ?? '') });
    expect(got[2]?.delivery?.status).toBe('delivered');
  });

  it('a hold refused by the full queue, one that expires, one still held at shutdown without a journal: one final receipt each, unresolved', async () => {
    expect((await track('m-exp', 'v-exp')).status).toBe(200);
    await settle();
    // The queue is full now (m-exp waits for stats): the next hold is refused, and final at once.
    expect((await track('m-refused', 'v-refused')).status).toBe(200);
    await settle();
    expect(steps(await receiptsOf('v-refused'))).toEqual([
      ['stats', 'unresolved', 'drop', 'consent_unresolved'],
      ['red', 'unresolved', 'drop', 'consent_unresolved'],
    ]);
    clock.advance(60_000);
    await settle();
    const exp = await receiptsOf('v-exp');
    expect(steps(exp)).toEqual([
      ['stats', 'held', 'hold', 'consent_resolving'],
      ['red', 'held', 'hold', 'consent_resolving'],
      ['stats', 'held', 'hold', 'consent_unknown:analytics'],
      ['red', 'held_decided', 'redact', 'consent_unknown:analytics'],
      ['stats', 'unresolved', 'drop', 'consent_unresolved'],
    ]);
    expect(exp[4]).toMatchObject({ messageId: 'm-exp', visitorId: 'v-exp' });
    expect(finals(exp)).toBe(2);
    // Held at the shutdown, with no journal to keep it: dropped, and its receipt written before the store goes.
    expect((await track('m-shut', 'v-shut')).status).toBe(200);
    await settle();
    await tw.app.shutdown(1000);
    const shut = await receiptsOf('v-shut');
    expect(steps(shut).slice(-1)).toEqual([['stats', 'unresolved', 'drop', 'consent_unresolved']]);
    expect(finals(shut)).toBe(2);
  });
});
