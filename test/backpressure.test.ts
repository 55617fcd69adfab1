import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { closeServer, post, startTagwarden, testConfig } from './helpers.ts';

/**
 * Backpressure instead of silent drops (issue 11): a vendor that stops answering fills its
 * destination's queue (delivery.maxQueuedEvents); from then on hits are refused with 503 and
 * Retry-After, never acknowledged and then dropped as queue_full. When the vendor answers again,
 * every acknowledged event is delivered: acknowledged = delivered.
 */
forEachEngine('backpressure: a full destination queue refuses hits with 503', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  const held: Array<() => void> = [];
  let stalled = true;
  const logLines: string[] = [];
  const received: string[] = [];
  const vendor = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (): void => {
        for (const e of (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { batch: Array<{ messageId: string }> }).batch) received.push(e.messageId);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      };
      if (stalled) held.push(answer);
      else answer();
    });
  });

  beforeAll(async () => {
    vendor.listen(0, '127.0.0.1');
    await once(vendor, 'listening');
    db = await engine.open();
    const url = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}/hook`;
    tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: {} },
        delivery: { maxQueuedEvents: 20, journal: { retryAfterS: 3 } },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url }, timeoutMs: 60_000 }],
      }),
      pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }),
      { db },
    );
  });
  afterAll(async () => {
    stalled = false;
    for (const answer of held.splice(0)) answer();
    await tw.close();
    await closeServer(vendor);
    await db.close();
  });

  it('acknowledges what the queue can hold, refuses the rest with 503 + Retry-After, delivers every acknowledged event', async () => {
    const acknowledged: string[] = [];
    let refused = 0;
    for (let i = 0; i < 60; i++) {
      const messageId = `m-${i}`;
      const r = await fetch(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: 'E', messageId, anonymousId: 'v' }) });
      if (r.status === 200) acknowledged.push(messageId);
      else {
        expect(r.status).toBe(503);
        expect(r.headers.get('retry-after')).toBe('3');
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('TW_ERR_UNAVAILABLE');
        refused++;
      }
      // Let the hit reach its queue before the next one is admitted.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    expect(metrics).not.toMatch(/reason="queue_full"\} [1-9]/);
    expect(metrics).toMatch(/tagwarden_events_rejected_total\{client="journal",code="TW_ERR_UNAVAILABLE"\} [1-9]/);
    // Each refusal is logged at warn with its reason, at most 10 lines a minute, and no event data.
    const refusedLines = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'hit refused');
    expect(refusedLines.length).toBe(Math.min(refused, 10));
    expect(refusedLines[0]).toMatchObject({ level: 40, client: 'journal', reason: 'queue_full', destination: 'hook', code: 'TW_ERR_UNAVAILABLE' });
    expect(logLines.join('')).not.toContain('"anonymousId"');

    stalled = false;
    for (const answer of held.splice(0)) answer();
    const deadline = Date.now() + 15_000;
    while (new Set(received).size < acknowledged.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect([...new Set(received)].sort()).toEqual([...acknowledged].sort());
    // Single events: an answered request was acknowledged, nothing else arrived.
    expect((await post(`${tw.url}/v1/track`, { event: 'after', anonymousId: 'v' })).status).toBe(200);
  }, 30_000);
});
