import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type TagwardenApp } from '../src/app.ts';
import { loadTemplates } from '../src/destinations/load.ts';
import { createHttpServer } from '../src/http/server.ts';
import { closeServer, testConfig } from './helpers.ts';

/**
 * Slow clients against the server's own timers (src/http/server.ts), end to end on real time: a
 * client that drips its headers, or its body, is answered 408 and disconnected at the configured
 * time, not at Node's next connection check (30 s by default), and a prompt client on another
 * connection is served meanwhile. The timeouts are short (hundreds of ms) so the test is too.
 */
const HEADERS_TIMEOUT_MS = 300;
const REQUEST_TIMEOUT_MS = 600;
/** How late the cut may come: the check interval (15 ms here) and a loaded machine's scheduling. */
const LATE_MS = 250;
/** How early it may seem to come, seen from the client (its clock starts before the server's). */
const EARLY_MS = 20;
const DRIP_MS = 20;

interface SlowExchange {
  answer: string;
  /** From the connection to its close by the server. */
  closedAfterMs: number;
}

/** Sends `start` at once, then one byte of `drip` every DRIP_MS (never all of it), until the server closes. */
function slowClient(port: number, start: string, drip: string): Promise<SlowExchange> {
  return new Promise((resolve) => {
    let t0 = 0;
    let answer = '';
    let sent = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const socket = connect(port, '127.0.0.1', () => {
      t0 = performance.now();
      socket.write(start);
      timer = setInterval(() => {
        if (socket.writable && sent < drip.length) socket.write(drip[sent++]!);
      }, DRIP_MS);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined); // a write racing the server's close
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, closedAfterMs: performance.now() - t0 });
    });
    // A server that never closes the connection fails the test by vitest's timeout.
  });
}

function expectCutAt(x: SlowExchange, timeoutMs: number): void {
  expect(x.answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  expect(x.answer.toLowerCase()).toContain('connection: close');
  expect(JSON.parse(x.answer.slice(x.answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'TW_ERR_REQUEST_TIMEOUT' } });
  expect(x.closedAfterMs).toBeGreaterThanOrEqual(timeoutMs - EARLY_MS);
  expect(x.closedAfterMs).toBeLessThanOrEqual(timeoutMs + LATE_MS);
}

describe('slow clients are cut at the configured timeouts', () => {
  let app: TagwardenApp;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const config = testConfig({ site: { id: 'shop', categories: {} }, destinations: [] });
    app = createApp(config, { logger: pino({ level: 'silent' }), templates: loadTemplates() });
    server = createHttpServer({ headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: 5_000, maxHeaderBytes: 16_384 }, app.handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await app.shutdown(100);
    await closeServer(server);
  });

  it('headers sent byte by byte: 408 and closed at headersTimeoutMs', async () => {
    const x = await slowClient(port, 'POST /v1/track HTTP/1.1\r\nHost: tags.example.com\r\n', `X-Slow: ${'a'.repeat(200)}`);
    expectCutAt(x, HEADERS_TIMEOUT_MS);
  });

  it('a connection that sends nothing: closed at headersTimeoutMs', async () => {
    const x = await slowClient(port, '', '');
    expectCutAt(x, HEADERS_TIMEOUT_MS);
  });

  it('a body sent slowly to a hit route: 408 (not the route\'s 400) and closed at requestTimeoutMs', async () => {
    const body = JSON.stringify({ event: 'Slow', anonymousId: 'a-1', properties: { pad: 'x'.repeat(200) } });
    const x = await slowClient(port, `POST /v1/track HTTP/1.1\r\nHost: tags.example.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, body);
    expectCutAt(x, REQUEST_TIMEOUT_MS);
  });

  it('a prompt client is served while a slow one drips', async () => {
    const slow = slowClient(port, 'GET /healthz HTTP/1.1\r\n', 'Host: tags.example.com\r\n');
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(HEADERS_TIMEOUT_MS);
    expectCutAt(await slow, HEADERS_TIMEOUT_MS);
  });
});
