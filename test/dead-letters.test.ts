import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { runCli } from '../src/cli.ts';
import type { Db } from '../src/store/db.ts';
import { journalSize, listDead } from '../src/store/journal.ts';
import { openDb } from '../src/store/open.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Regression (issue 11): a delivery given up became a `dead` journal row that nobody could see,
 * resend or remove. Now a vendor answering 400 leaves a dead letter that the admin API and the CLI
 * list (without the event's personal data), replay (the running instance sends it again, consent
 * re-checked) and purge.
 */
forEachEngine('dead letters can be listed, replayed and purged (CLI and API)', (engine) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-dead-letters-'));
  let db: Db;
  let storeUrl: string;
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let admin: string;
  let reader: string;
  let accepting = false;
  /** Bodies the vendor accepted (answered 200). */
  const received: string[] = [];

  beforeAll(async () => {
    if (engine.name === 'sqlite') {
      // A file, so that the CLI (its own connection) sees what the running instance wrote.
      storeUrl = `sqlite:${join(dir, 'tagwarden.db')}`;
      db = await openDb(storeUrl);
    } else {
      db = await engine.open();
      storeUrl = engine.url();
    }
    // The refusal echoes the payload, as some vendors do: what is stored of it is scrubbed.
    vendor = await startVendor((hit) => {
      if (!accepting) return { status: 400, body: '{"error":"invalid event","email":"jane@example.com"}' };
      received.push(JSON.stringify(hit.body));
      return { status: 200, body: '{}' };
    });
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: { analytics: {} } },
        // A short lease: a replay made by another process (the CLI) is taken over within a second.
        delivery: { baseDelayMs: 10, maxDelayMs: 50, journal: { leaseMs: 1000 } },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` } }],
      }),
      undefined,
      { db },
    );
    admin = (await createApiKey(db, { label: 'ops', scopes: ['admin'] })).key;
    reader = (await createApiKey(db, { label: 'bi', scopes: ['consent:read', 'audit:read'] })).key;
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function until(what: string, done: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const delivered = (messageId: string) => received.some((body) => body.includes(messageId));
  /** The counters of /metrics that add up: hook's decisions, its resumed pairs, events received. */
  async function counts(): Promise<{ decisions: number; resumed: number; received: number }> {
    const text = await (await fetch(`${tw.url}/metrics`)).text();
    const sum = (name: string, label = ''): number =>
      [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].filter((m) => m[1]!.includes(label)).reduce((a, m) => a + Number(m[2]), 0);
    return { decisions: sum('tagwarden_decisions_total', 'destination="hook"'), resumed: sum('tagwarden_events_resumed_total', 'destination="hook"'), received: sum('tagwarden_events_received_total') };
  }
  /** Sends one event while the vendor refuses it, and waits for its dead letter. */
  async function dies(messageId: string): Promise<number> {
    accepting = false;
    const r = await post(`${tw.url}/v1/track`, {
      type: 'track',
      event: 'Order Completed',
      messageId,
      anonymousId: `v-${messageId}`,
      traits: { email: 'jane@example.com' },
      context: { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (dead letter test)' },
      properties: { revenue: 42 },
    });
    expect(r.status).toBe(200);
    let hitId = 0;
    await until(`${messageId} to die`, async () => {
      const dead = (await listDead(db, { siteId: 'shop' })).find((d) => d.payload.includes(messageId));
      hitId = dead?.hitId ?? 0;
      return dead !== undefined;
    });
    return hitId;
  }
  const api = (method: string, path: string, body?: unknown, key = admin) =>
    fetch(`${tw.url}${path}`, { method, headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await runCli([...argv, '--store', storeUrl, '--site', 'shop'], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
    return { code, stdout, stderr };
  }
  const noPersonalData = (text: string) => {
    for (const secret of ['jane@example.com', '203.0.113.9', 'dead letter test', 'revenue', 'traits']) expect(text).not.toContain(secret);
  };

  it('lists a dead letter through the API and replays it: the vendor then receives it', async () => {
    const hitId = await dies('m-api-replay');
    const stored = await listDead(db, { siteId: 'shop' });
    expect(stored).toEqual([expect.objectContaining({ hitId, destinationId: 'hook', state: 'dead', code: 'TW_ERR_DELIVERY_REJECTED', reason: 'status_400', lastStatus: 400 })]);

    const listed = await api('GET', '/api/v1/deliveries/dead?destinationId=hook&reason=status_400');
    expect(listed.status).toBe(200);
    const text = await listed.text();
    noPersonalData(text);
    const { deadLetters } = JSON.parse(text) as { deadLetters: Array<Record<string, unknown>> };
    expect(deadLetters).toEqual([
      {
        hitId,
        destinationId: 'hook',
        code: 'TW_ERR_DELIVERY_REJECTED',
        reason: 'status_400',
        attempts: 1,
        lastStatus: 400,
        excerpt: expect.stringContaining('invalid event'),
        diedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        receivedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        messageId: 'm-api-replay',
        type: 'track',
        event: 'Order Completed',
      },
    ]);

    accepting = true;
    const before = await counts();
    const replayed = await api('POST', '/api/v1/deliveries/dead/replay', { hitId, destinationId: 'hook' });
    expect(replayed.status).toBe(200);
    expect(await replayed.json()).toEqual({ replayed: 1 });
    await until('the replayed event at the vendor', () => delivered('m-api-replay'));
    // The replay is decided once more (consent re-checked) and counted as resumed, not received, so
    // received + resumed = decisions + held still holds for the destination (docs/monitoring.md).
    const after = await counts();
    expect({ decisions: after.decisions - before.decisions, resumed: after.resumed - before.resumed, received: after.received - before.received }).toEqual({ decisions: 1, resumed: 1, received: 0 });
    expect(await listDead(db, { siteId: 'shop' })).toEqual([]);
    // Replayed already: naming it again is a 404.
    const again = await api('POST', '/api/v1/deliveries/dead/replay', { hitId, destinationId: 'hook' });
    expect(again.status).toBe(404);
    await until('the delivered hit to leave the journal', async () => (await journalSize(db, 'shop')).hits === 0);
  });

  it('lists and replays a dead letter with the CLI: the running instance takes it over and sends it', async () => {
    const hitId = await dies('m-cli-replay');
    const listed = await cli('dlq', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${hitId}\\s+hook\\s+TW_ERR_DELIVERY_REJECTED\\s+status_400\\s+1\\s+400\\s.*m-cli-replay\\s+Order Completed`, 'm'));
    noPersonalData(listed.stdout);
    noPersonalData((await cli('dlq', 'list', '--json')).stdout);

    accepting = true;
    expect(await cli('dlq', 'replay', '--destination', 'hook')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Replayed 1 dead letter\. /) });
    // No call into the app: its periodic takeover (every delivery.journal.leaseMs) finds the released hit.
    await until('the CLI-replayed event at the vendor', () => delivered('m-cli-replay'));
    expect(await listDead(db, { siteId: 'shop' })).toEqual([]);
  });

  it('purges dead letters through the API and the CLI', async () => {
    await dies('m-api-purge');
    const purged = await api('DELETE', '/api/v1/deliveries/dead', { destinationId: 'hook' });
    expect(purged.status).toBe(200);
    expect(await purged.json()).toEqual({ purged: 1 });
    expect(await listDead(db, { siteId: 'shop' })).toEqual([]);

    await dies('m-cli-purge');
    expect((await cli('dlq', 'purge')).code).toBe(2);
    expect(await listDead(db, { siteId: 'shop' })).toHaveLength(1);
    expect(await cli('dlq', 'purge', '--yes')).toMatchObject({ code: 0, stdout: 'Purged 1 dead letter.\n' });
    expect(await listDead(db, { siteId: 'shop' })).toEqual([]);
    // A purged letter's hit goes with it; nothing else was left.
    expect(await journalSize(db, 'shop')).toEqual({ hits: 0, bytes: 0, dead: 0 });
    expect(delivered('m-api-purge') || delivered('m-cli-purge')).toBe(false);
  });

  it('refuses a key without the admin scope (403) and bad filters (400)', async () => {
    const forbidden = await api('GET', '/api/v1/deliveries/dead', undefined, reader);
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('TW_ERR_FORBIDDEN');
    expect((await api('POST', '/api/v1/deliveries/dead/replay', { all: true }, reader)).status).toBe(403);
    expect((await fetch(`${tw.url}/api/v1/deliveries/dead`)).status).toBe(401);

    const bad = async (method: string, path: string, body?: unknown) => {
      const r = await api(method, path, body);
      expect(r.status).toBe(400);
      return ((await r.json()) as { error: { code: string; message: string } }).error;
    };
    expect(await bad('GET', '/api/v1/deliveries/dead?since=yesterday')).toMatchObject({ code: 'TW_ERR_VALIDATION', message: expect.stringMatching(/since/) });
    expect((await bad('GET', '/api/v1/deliveries/dead?limit=5000')).message).toMatch(/limit/);
    expect((await bad('GET', '/api/v1/deliveries/dead?destination=hook')).message).toMatch(/destination/);
    expect((await bad('GET', '/api/v1/deliveries/dead?since=2026-02-01&before=2026-01-01')).message).toMatch(/since/);
    // Acting on every dead letter is said, not implied.
    expect((await bad('POST', '/api/v1/deliveries/dead/replay', {})).message).toMatch(/"all": true/);
    expect((await bad('DELETE', '/api/v1/deliveries/dead', {})).message).toMatch(/"all": true/);
    expect((await bad('DELETE', '/api/v1/deliveries/dead', { all: true, reason: 'status_400' })).message).toMatch(/all: true takes no other filter/);
    expect((await bad('POST', '/api/v1/deliveries/dead/replay', { hitId: 'one' })).message).toMatch(/hitId/);
    expect((await bad('POST', '/api/v1/deliveries/dead/replay', { all: true, limit: true })).message).toMatch(/limit/);
    // All, said: nothing is left to act on, and that is not an error.
    expect(await (await api('POST', '/api/v1/deliveries/dead/replay', { all: true })).json()).toEqual({ replayed: 0 });
    expect(await (await api('DELETE', '/api/v1/deliveries/dead', { all: true })).json()).toEqual({ purged: 0 });
  });
});

describe('an API replay is sent at once, not at the next takeover', () => {
  it('delivers the replayed dead letter long before delivery.journal.leaseMs', async () => {
    const db = await openDb('sqlite::memory:');
    let accepting = false;
    const received: string[] = [];
    const vendor = await startVendor((hit) => {
      if (!accepting) return { status: 400, body: '{}' };
      received.push(JSON.stringify(hit.body));
      return { status: 200, body: '{}' };
    });
    // Ten minutes: the periodic takeover never runs during this test, so only the replay's own
    // call into the app can send it.
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: { analytics: {} } },
        delivery: { journal: { leaseMs: 600_000 } },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` } }],
      }),
      undefined,
      { db },
    );
    try {
      const key = (await createApiKey(db, { label: 'ops', scopes: ['admin'] })).key;
      expect((await post(`${tw.url}/v1/track`, { type: 'track', event: 'Signed Up', messageId: 'm-now', anonymousId: 'v-1' })).status).toBe(200);
      const deadline = Date.now() + 10_000;
      while ((await listDead(db, { siteId: 'shop' })).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      accepting = true;
      const r = await post(`${tw.url}/api/v1/deliveries/dead/replay`, { destinationId: 'hook' }, { 'x-api-key': key });
      expect(r).toEqual({ status: 200, body: { replayed: 1 } });
      while (!received.some((b) => b.includes('m-now')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(received.some((b) => b.includes('m-now'))).toBe(true);
    } finally {
      await tw.close();
      await vendor.close();
      await db.close();
    }
  });
});
