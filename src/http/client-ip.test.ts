import express from 'express';
import fc from 'fast-check';
import request from 'supertest';
import { createServer, type IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { clientIp } from './client-ip.ts';

function fakeReq(peer: string, xff: string | undefined): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } } as unknown as IncomingMessage;
}

describe('clientIp', () => {
  test.each([
    [0, '10.0.0.1', '203.0.113.9', '10.0.0.1'],
    [1, '10.0.0.1', undefined, '10.0.0.1'],
    [1, '10.0.0.1', '203.0.113.9', '203.0.113.9'],
    [1, '10.0.0.1', '6.6.6.6, 203.0.113.9', '203.0.113.9'],
    [2, '10.0.0.1', '6.6.6.6, 203.0.113.9, 10.0.0.2', '203.0.113.9'],
    [3, '10.0.0.1', '203.0.113.9', '203.0.113.9'],
  ] as const)('hops %i, peer %s, X-Forwarded-For %s → %s', (hops, peer, xff, expected) => {
    expect(clientIp(fakeReq(peer, xff), hops)).toBe(expected);
  });

  test("agrees with Express's req.ip for any header and hop count", async () => {
    const entry = fc.oneof(fc.ipV4(), fc.constantFrom('', ' ', '\t', 'unknown', '::1', 'a b', ' 192.0.2.1 '));
    const cases = fc.sample(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.option(fc.array(entry, { maxLength: 5 }).map((a) => a.join(', ')), { nil: undefined })), 150);
    for (const [hops, xff] of cases) {
      const app = express();
      app.set('trust proxy', hops);
      let ours: string | undefined;
      app.get('/', (req, res) => {
        ours = clientIp(req, hops);
        res.json({ ip: req.ip ?? null });
      });
      const server = createServer(app);
      const r = request(server).get('/');
      const res = await (xff === undefined ? r : r.set('x-forwarded-for', xff));
      expect(ours ?? null, `hops ${hops}, header ${JSON.stringify(xff)}`).toBe((res.body as { ip: string | null }).ip);
    }
  });
});
