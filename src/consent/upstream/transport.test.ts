import { afterEach, describe, expect, it } from 'vitest';
import type { Dispatcher, MockAgent } from 'undici';
import { FakeClock } from '../../lib/fake-clock.ts';
import { createPool } from '../../lib/http/pool.ts';
import { startServer, type TestServer } from '../../lib/http/test-server.ts';
import { CONSENT_BODY, UPSTREAM_ORIGIN, flush, mockUpstream } from './test-helpers.ts';
import { createVerifyTransport } from './transport.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function setup(dispatcher: Dispatcher = mockUpstream(), over: { origin?: string; maxBodyBytes?: number } = {}) {
  const clock = new FakeClock();
  const transport = createVerifyTransport({
    dispatcher,
    url: (v) => `${over.origin ?? UPSTREAM_ORIGIN}/verify?visitor_id=${encodeURIComponent(v)}`,
    apiKeyHeader: 'X-API-Key',
    apiKey: 'key-123',
    categoryMap: { analytics: 'analytics', marketing: 'advertising' },
    timeoutMs: 1_000,
    maxBodyBytes: over.maxBodyBytes ?? 16 * 1024,
    clock,
  });
  closers.push(async () => {
    transport.abortAll();
    await dispatcher.close();
  });
  return { clock, transport, mock: dispatcher as MockAgent };
}

function reply(mock: MockAgent, status: number, body: string | Buffer, headers: Record<string, string | string[]> = {}) {
  return mock.get(UPSTREAM_ORIGIN).intercept({ path: () => true, method: 'GET' }).reply(status, body, { headers: { 'content-type': 'application/json', ...headers } });
}

describe('verify transport', () => {
  it('GETs the URL with the API key and reads a 200 into an answer dated by the clock', async () => {
    const { clock, transport, mock } = setup();
    let seen: { path: string; headers: unknown } | undefined;
    mock
      .get(UPSTREAM_ORIGIN)
      .intercept({ path: () => true, method: 'GET' })
      .reply((opts) => {
        seen = { path: opts.path, headers: opts.headers };
        return { statusCode: 200, data: JSON.stringify(CONSENT_BODY) };
      });
    const x = await transport.exchange('v 1');
    expect(seen?.path).toBe('/verify?visitor_id=v%201');
    expect(seen?.headers).toMatchObject({ 'x-api-key': 'key-123', accept: 'application/json' });
    expect(x).toEqual({ kind: 'answer', answer: expect.objectContaining({ found: true, categories: { analytics: 'granted', advertising: 'denied' }, fetchedAt: clock.now() }) });
  });

  it('another status is handed on with its (single) Retry-After', async () => {
    const { transport, mock } = setup();
    reply(mock, 429, 'slow down', { 'retry-after': '30' });
    reply(mock, 503, '', { 'retry-after': ['1', '2'] });
    reply(mock, 301, '', { location: 'https://elsewhere.test/' });
    expect(await transport.exchange('a')).toEqual({ kind: 'status', status: 429, retryAfter: '30' });
    expect(await transport.exchange('b')).toEqual({ kind: 'status', status: 503 });
    expect(await transport.exchange('c')).toEqual({ kind: 'status', status: 301 });
  });

  it.each<[string, string | Buffer, Record<string, string>]>([
    ['not JSON', '<html>', {}],
    ['not the documented shape', '{"hasConsent":"yes"}', {}],
    ['longer than maxBodyBytes', JSON.stringify({ ...CONSENT_BODY, pad: 'x'.repeat(200) }), {}],
    ['declared longer than maxBodyBytes', JSON.stringify(CONSENT_BODY), { 'content-length': '1000000' }],
    ['not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), {}],
  ])('a 200 %s is malformed', async (_name, body, headers) => {
    const { transport, mock } = setup(undefined, { maxBodyBytes: 150 });
    reply(mock, 200, body, headers);
    expect(await transport.exchange('v')).toEqual({ kind: 'malformed' });
  });

  it('a network error is network; an undici timeout code is a timeout', async () => {
    const { transport, mock } = setup();
    mock.get(UPSTREAM_ORIGIN).intercept({ path: () => true, method: 'GET' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    mock.get(UPSTREAM_ORIGIN).intercept({ path: () => true, method: 'GET' }).replyWithError(Object.assign(new Error('slow'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    expect(await transport.exchange('a')).toEqual({ kind: 'network' });
    expect(await transport.exchange('b')).toEqual({ kind: 'timeout' });
  });

  it('times out on the injected clock, counting the request in flight until then', async () => {
    const { clock, transport, mock } = setup();
    reply(mock, 200, JSON.stringify(CONSENT_BODY)).delay(5_000);
    const pending = transport.exchange('slow');
    await flush();
    expect(transport.inFlight).toBe(1);
    clock.advance(1_000);
    expect(await pending).toEqual({ kind: 'timeout' });
    expect(transport.inFlight).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('abortAll ends every request on the wire as closed', async () => {
    const { transport, mock } = setup();
    reply(mock, 200, JSON.stringify(CONSENT_BODY)).delay(5_000).times(2);
    const pending = [transport.exchange('a'), transport.exchange('b')];
    await flush();
    transport.abortAll();
    expect(await Promise.all(pending)).toEqual([{ kind: 'closed' }, { kind: 'closed' }]);
  });

  it('a 200 whose body stalls is the timeout that cut it, never a partial body parsed', async () => {
    const server: TestServer = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' });
      res.write('{"hasConsent":true,"categories":{"analytics":true}}');
    });
    closers.push(() => server.close());
    const { clock, transport } = setup(createPool('upstream-verify', { connections: 1 }), { origin: server.url });
    const pending = transport.exchange('v');
    while (server.received.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    clock.advance(1_000);
    expect(await pending).toEqual({ kind: 'timeout' });
  });
});
