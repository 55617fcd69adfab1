import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { createRateLimitedLog } from '../observability/rate-limited-log.ts';
import { checkingIntervalMs, createHttpServer } from './server.ts';

describe('createHttpServer timeouts', () => {
  it('checks for late requests often enough to cut them within 5% of the shorter timeout', () => {
    expect(checkingIntervalMs({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 })).toBe(500);
    expect(checkingIntervalMs({ headersTimeoutMs: 1_000, requestTimeoutMs: 1_000 })).toBe(50);
    // Never busier than every 5 ms, never lazier than every second.
    expect(checkingIntervalMs({ headersTimeoutMs: 40, requestTimeoutMs: 60 })).toBe(5);
    expect(checkingIntervalMs({ headersTimeoutMs: 120_000, requestTimeoutMs: 300_000 })).toBe(1000);
  });

  it('takes a headers timeout longer than the request timeout (Node refuses one): the request timeout bounds both', () => {
    const server = createHttpServer({ headersTimeoutMs: 20_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxHeaderBytes: 16_384 }, () => undefined);
    expect([server.headersTimeout, server.requestTimeout]).toEqual([10_000, 10_000]);
    server.close();
  });
});

describe('createHttpServer refusals', () => {
  it("logs a request Node's parser refuses (431) by reason, at warn, without what the client sent", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const refusals = createRateLimitedLog({ log, maxPerInterval: 10, intervalMs: 60_000, clock: new FakeClock() });
    const server = createHttpServer({ headersTimeoutMs: 10_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxHeaderBytes: 1024 }, () => undefined, refusals);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.end(`GET /secret-path HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(4096)}\r\n\r\n`);
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await once(socket, 'close');
    server.close();
    expect(answer.startsWith('HTTP/1.1 431')).toBe(true);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'request refused by the server', status: 431, code: 'TW_ERR_HEADERS_TOO_LARGE', reason: 'headers_too_large' })]);
    expect(JSON.stringify(lines)).not.toContain('secret-path');
  });
});
