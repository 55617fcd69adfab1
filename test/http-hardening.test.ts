import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTagwarden, testConfig } from './helpers.ts';

/** Raw HTTP exchange, for what fetch will not send (oversized headers). */
function rawRequest(url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body === undefined ? 'GET' : 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP hardening', () => {
  let tw: Awaited<ReturnType<typeof startTagwarden>>;

  beforeAll(async () => {
    tw = await startTagwarden(
      testConfig({
        server: { maxEventBytes: 2048, maxBatchBytes: 4096, maxBatchEvents: 3, maxHeaderBytes: 2048, allowedOrigins: ['https://shop.example'] },
        site: { id: 'shop', categories: {} },
      }),
    );
  });
  afterAll(async () => {
    await tw.close();
  });

  it('413 with a JSON error when the body is over the route limit', async () => {
    const r = await post(`${tw.url}/v1/track`, { event: 'x', anonymousId: 'a', properties: { pad: 'x'.repeat(3000) } });
    expect(r.status).toBe(413);
    expect(r.body).toEqual({ error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 2048 bytes', details: { limit: 2048 } } });
  });

  it('413 on a chunked body that grows past the limit', async () => {
    const r = await rawRequest(`${tw.url}/v1/track`, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, JSON.stringify({ event: 'x', anonymousId: 'a', p: 'y'.repeat(5000) }));
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('TW_ERR_PAYLOAD_TOO_LARGE');
  });

  it('the batch route has its own, larger limit and an event count bound', async () => {
    const ok = await post(`${tw.url}/v1/batch`, { batch: [{ type: 'track', event: 'x', anonymousId: 'a', properties: { pad: 'x'.repeat(2500) } }] });
    expect(ok.status).toBe(200);
    const many = await post(`${tw.url}/v1/batch`, { batch: Array.from({ length: 4 }, () => ({ type: 'track', event: 'x', anonymousId: 'a' })) });
    expect(many.status).toBe(400);
    expect(many.body.error.message).toBe('batch: at most 3 events per request');
  });

  it('431 with a JSON error when the headers are too large', async () => {
    const r = await rawRequest(`${tw.url}/healthz`, { 'x-big': 'z'.repeat(4096) });
    expect(r.status).toBe(431);
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'TW_ERR_HEADERS_TOO_LARGE', message: 'request headers exceed 2048 bytes' } });
  });

  it.each([
    ['application/x-www-form-urlencoded', 'a=b', 415, 'TW_ERR_UNSUPPORTED_MEDIA_TYPE'],
    ['application/json', '{"event":', 400, 'TW_ERR_MALFORMED_BODY'],
    ['application/json', '', 400, 'TW_ERR_MALFORMED_BODY'],
  ])('%s %j → %i %s', async (ctype, body, status, code) => {
    const r = await rawRequest(`${tw.url}/v1/track`, { 'content-type': ctype }, body);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body).error.code).toBe(code);
  });

  it('unknown routes get a JSON 404', async () => {
    const r = await rawRequest(`${tw.url}/nope`, {});
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error.code).toBe('TW_ERR_NOT_FOUND');
  });

  it('a hit route answers 405 with Allow to a method it does not take; other paths stay 404', async () => {
    const r = await fetch(`${tw.url}/v1/track`);
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST, OPTIONS');
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('TW_ERR_METHOD_NOT_ALLOWED');
    const pixel = await fetch(`${tw.url}/tr`, { method: 'PUT', body: 'x' });
    expect([pixel.status, pixel.headers.get('allow')]).toEqual([405, 'GET, HEAD, POST, OPTIONS']);
    expect((await fetch(`${tw.url}/v1/nope`)).status).toBe(404);
  });

  it('answers CORS preflights for allowed origins only', async () => {
    const ok = await fetch(`${tw.url}/v1/track`, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    const other = await fetch(`${tw.url}/v1/track`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('serves /metrics', async () => {
    const r = await fetch(`${tw.url}/metrics`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('tagwarden_events_received_total');
  });
});

describe('lifecycle', () => {
  it('healthz and readyz, then 503 for hits and readiness once shutdown starts', async () => {
    const tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: {} } }));
    expect((await fetch(`${tw.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${tw.url}/readyz`)).status).toBe(200);
    const stopping = tw.app.shutdown(500);
    const r = await post(`${tw.url}/v1/track`, { event: 'x', anonymousId: 'a' });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('TW_ERR_UNAVAILABLE');
    expect((await fetch(`${tw.url}/readyz`)).status).toBe(503);
    await stopping;
    await tw.close();
  });

  it('a hit whose body finishes arriving after shutdown began is refused, not acknowledged', async () => {
    const tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: {} } }));
    const body = JSON.stringify({ event: 'x', anonymousId: 'a' });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${tw.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      // The server's own listener ran first: once it has, the request is past the routing checks
      // and waiting for its body when shutdown starts.
      tw.server.once('request', () => {
        const stopping = tw.app.shutdown(500);
        req.end(body.slice(5));
        stopping.catch(reject);
      });
      req.write(body.slice(0, 5));
    });
    const r = await answer;
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).error.code).toBe('TW_ERR_UNAVAILABLE');
    await tw.close();
  });

  it('main exits non-zero before listening and prints every config problem with its path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-main-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      ['site:', '  id: shop', '  categories: { advertising: {} }', 'destinations:', '  - id: meta', '    template: meta-capi', '    settings: {}', '  - id: x', '    template: nope', 'bogus: 1', ''].join('\n'),
    );
    const r = spawnSync(process.execPath, ['src/main.ts', '--config', file], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('destinations[0].settings.pixelId: required');
    expect(r.stderr).toContain('destinations[0].settings.accessToken: required');
    expect(r.stderr).toContain('destinations[1].template: unknown template "nope"');
    expect(r.stderr).toContain('bogus: unknown key');
    expect(r.stdout).not.toContain('listening');
  });
});
