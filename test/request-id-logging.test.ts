import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { startTagwarden, startVendor, testConfig } from './helpers.ts';

/**
 * Issue 15, logs that help: every request has an id (a safe inbound X-Request-Id, else a new one)
 * echoed in X-Request-Id, and every line about the hit carries it as `requestId`: its refusals,
 * its events' drops and expiries, Express's error answers (in the body too). Each refusal is logged
 * with a level and a stable reason, rate-limited, without the path's or the Host's text.
 */
describe('request ids and refusal lines', () => {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString('utf8'));
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  const clock = new FakeClock(Date.parse('2026-12-01T10:00:00.000Z'));
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  // fetch sends the URL's host; the guard's 421 is asked with another one by rawRequest.
  const HOST = '127.0.0.1';

  beforeAll(async () => {
    // The `bad` destination's vendor refuses everything (400, not retried).
    vendor = await startVendor((hit) => (hit.path === '/bad' ? { status: 400, body: '{}' } : { status: 200, body: '{}' }));
    const config = testConfig({
      server: { allowedHosts: [HOST] },
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
      hold: { maxEvents: 100, maxAgeMs: 60_000 },
      destinations: [
        { id: 'hook', template: 'webhook', settings: { url: `${vendor.url}/hook` }, consent: { categories: ['analytics'], whenUnknown: 'hold' } },
        { id: 'bad', template: 'webhook', settings: { url: `${vendor.url}/bad` }, consent: { categories: [] } },
      ],
    });
    tw = await startTagwarden(config, pino({ level: 'info' }, sink), { consentClock: clock });
  });
  afterAll(async () => {
    await tw.close();
    await vendor.close();
  });

  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  const send = (method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    fetch(`${tw.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const track = (messageId: string, headers: Record<string, string> = {}, consent?: boolean) =>
    send(
      'POST',
      '/v1/track',
      { 'content-type': 'application/json', ...headers },
      JSON.stringify({ messageId, event: 'x', anonymousId: 'a-1', ...(consent === undefined ? {} : { context: { consent: { categoryPreferences: { analytics: consent } } } }) }),
    );

  it('keeps a short, plain inbound X-Request-Id and echoes it; replaces one too long or with other characters', async () => {
    const kept = await track('m-keep', { 'x-request-id': 'lb-1234.abc_DEF' });
    expect(kept.status).toBe(200);
    expect(kept.headers.get('x-request-id')).toBe('lb-1234.abc_DEF');
    for (const bad of ['x'.repeat(65), 'has space', 'semi;colon', '']) {
      const id = (await track(`m-${bad.length}`, bad === '' ? {} : { 'x-request-id': bad })).headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(id).not.toBe(bad);
    }
    expect(raw.join('')).not.toContain('semi;colon');
  });

  it("a refused event's line carries the request id of its answer", async () => {
    const res = await send('POST', '/v1/track', { 'content-type': 'application/json', 'x-request-id': 'refused-1' }, JSON.stringify({ messageId: 'm-bad', anonymousId: 'a' }));
    expect(res.status).toBe(400);
    expect(logged('event refused').at(-1)).toMatchObject({ level: 40, requestId: 'refused-1', reason: 'event', messageId: 'm-bad' });
  });

  it("an accepted hit's policy drop carries its request id (the decision comes after the answer)", async () => {
    expect((await track('m-denied', { 'x-request-id': 'denied-1' }, false)).status).toBe(200);
    await tw.app.flush(2000);
    expect(logged('event dropped by policy').find((l) => l.messageId === 'm-denied')).toMatchObject({ level: 30, requestId: 'denied-1', destination: 'hook', reason: 'consent_denied:analytics' });
  });

  it('a held event that expires is logged at info as consent_unresolved, with its request id', async () => {
    expect((await track('m-held', { 'x-request-id': 'held-1' })).status).toBe(200);
    await tw.app.flush(2000);
    clock.advance(61_000);
    expect(logged('held event expired').find((l) => l.messageId === 'm-held')).toMatchObject({ level: 30, requestId: 'held-1', destination: 'hook', reason: 'consent_unresolved' });
  });

  it('a wrong method on a hit route is logged (405, method_not_allowed) with the request id', async () => {
    const res = await send('PUT', '/v1/track', { 'x-request-id': 'put-1' }, '{}');
    expect(res.status).toBe(405);
    expect(logged('request refused').at(-1)).toMatchObject({ level: 40, requestId: 'put-1', route: '/v1/track', status: 405, code: 'TW_ERR_METHOD_NOT_ALLOWED', reason: 'method_not_allowed' });
  });

  it("the guard's refusals (400 traversal, 421 host) are logged by reason, without the target or the Host", async () => {
    const traversal = await rawRequest('/x/../secret-path', HOST, 'guard-1');
    expect(traversal.status).toBe(400);
    expect(traversal.requestId).toBe('guard-1');
    expect(logged('request refused by the guard').at(-1)).toEqual(expect.objectContaining({ level: 40, requestId: 'guard-1', status: 400, reason: 'target_traversal' }));
    const host = await rawRequest('/v1/track', 'evil.example', 'guard-2');
    expect(host.status).toBe(421);
    expect(logged('request refused by the guard').at(-1)).toEqual(expect.objectContaining({ level: 40, requestId: 'guard-2', status: 421, code: 'TW_ERR_MISDIRECTED', reason: 'host_not_allowed' }));
    expect(raw.join('')).not.toContain('secret-path');
    expect(raw.join('')).not.toContain('evil.example');
  });

  it('an Express error answer has the request id in its body and its line (by code, never the path)', async () => {
    const res = await send('GET', '/nothing/here/visitor-42', { 'x-request-id': 'express-1' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'TW_ERR_NOT_FOUND', message: expect.any(String), requestId: 'express-1' } });
    expect(logged('request refused').at(-1)).toEqual(expect.objectContaining({ level: 30, requestId: 'express-1', status: 404, code: 'TW_ERR_NOT_FOUND', reason: 'TW_ERR_NOT_FOUND' }));
    expect(raw.join('')).not.toContain('visitor-42');
  });

  it('deliveries not completed are logged at warn per destination and reason, at most 10 a minute, with their messageIds', async () => {
    for (let i = 0; i < 12; i++) {
      await track(`m-fail-${i}`, {}, true);
      await tw.app.flush(2000);
    }
    // Every hit so far went to `bad` too (it needs no consent): well over 10 failed batches, 10 lines.
    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    expect(Number(/tagwarden_deliveries_total\{destination="bad",outcome="failed"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(12);
    const failed = logged('delivery not completed').filter((l) => l.destination === 'bad');
    expect(failed).toHaveLength(10);
    expect(failed.at(-1)).toMatchObject({ level: 40, outcome: 'failed', reason: 'status_400', status: 400, events: 1, messageIds: [expect.stringMatching(/^m-/)] });
  });

  it('a hit during shutdown is refused with 503 and logged (shutting_down) with its request id; what was still held is logged once', async () => {
    expect((await track('m-held-2')).status).toBe(200);
    await tw.app.flush(2000);
    await tw.app.shutdown(100);
    // Without the journal a held event is dropped at shutdown: one line says how many.
    expect(logged('held events dropped at shutdown')).toEqual([expect.objectContaining({ level: 30, reason: 'consent_unresolved', events: 1 })]);
    const res = await track('m-late', { 'x-request-id': 'late-1' });
    expect(res.status).toBe(503);
    expect(logged('request refused').at(-1)).toMatchObject({ level: 40, requestId: 'late-1', route: '/v1/track', status: 503, reason: 'shutting_down' });
    // Express's 503 (readiness, the API) is logged at warn by its code, the route pattern as the route.
    const ready = await send('GET', '/readyz', { 'x-request-id': 'late-2' });
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: { requestId: string } }).error.requestId).toBe('late-2');
    expect(logged('request refused').at(-1)).toMatchObject({ level: 40, requestId: 'late-2', method: 'GET', route: '/readyz', status: 503, code: 'TW_ERR_UNAVAILABLE', reason: 'TW_ERR_UNAVAILABLE' });
  });

  /** A request with a raw target and Host (fetch normalises both). */
  function rawRequest(path: string, host: string, requestId: string): Promise<{ status: number; requestId: string | undefined }> {
    const { port } = new URL(tw.url);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'GET', path, headers: { host, 'x-request-id': requestId, connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, requestId: res.headers['x-request-id'] as string | undefined }));
      });
      req.on('error', reject);
      req.end();
    });
  }
});
