import { describe, expect, it } from 'vitest';
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
