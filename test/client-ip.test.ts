import { afterEach, describe, expect, it } from 'vitest';
import { post, startTagwarden, testConfig } from './helpers.ts';

/**
 * The client IP comes from the socket, or from X-Forwarded-For only through the configured number
 * of trusted proxies (`server.trustProxyHops`): entries a client wrote itself are never believed.
 */
describe('client IP and X-Forwarded-For', () => {
  const adminKey = 'client-ip-admin-key-0123456789';
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function ipSeen(hops: number, xff?: string): Promise<string> {
    const tw = await startTagwarden(testConfig({ server: { trustProxyHops: hops }, site: { id: 'shop', categories: {} }, debug: { explain: true, adminKey } }));
    close = tw.close;
    const headers: Record<string, string> = { authorization: `Bearer ${adminKey}` };
    if (xff !== undefined) headers['x-forwarded-for'] = xff;
    const r = await post(`${tw.url}/debug/explain`, { type: 'track', event: 'x', anonymousId: 'a' }, headers);
    return (r.body as { event: { context: { ip: string } } }).event.context.ip;
  }

  it.each([
    ['no proxy trusted: the socket, whatever the header says', 0, '203.0.113.9', '127.0.0.1'],
    ['one proxy: the address it saw (the last entry)', 1, '203.0.113.9', '203.0.113.9'],
    ['one proxy: a spoofed entry the client added in front is ignored', 1, '198.51.100.66, 203.0.113.9', '203.0.113.9'],
    ['two proxies: the entry the outer proxy wrote', 2, '198.51.100.66, 203.0.113.9, 192.0.2.1', '203.0.113.9'],
    ['one proxy and no header: the socket', 1, undefined, '127.0.0.1'],
  ])('%s', async (_name, hops, xff, expected) => {
    expect(await ipSeen(hops, xff)).toBe(expected);
  });
});
