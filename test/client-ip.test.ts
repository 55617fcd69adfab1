import { afterEach, describe, expect, it } from 'vitest';
import { post, startTagwarden, startVendor, testConfig } from './helpers.ts';

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

  it('a destination with truncateIp gets the address cut to /24 (IPv4) or /48 (IPv6); the others get it whole', async () => {
    const vendor = await startVendor();
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'disabled', categories: {} },
        destinations: [
          { id: 'cut', template: 'webhook', settings: { url: `${vendor.url}/cut` }, truncateIp: true },
          { id: 'whole', template: 'webhook', settings: { url: `${vendor.url}/whole` } },
        ],
      }),
    );
    try {
      await post(`${tw.url}/v1/track`, { messageId: 'v4', event: 'x', anonymousId: 'a', context: { ip: '203.0.113.77' } });
      await post(`${tw.url}/v1/track`, { messageId: 'v6', event: 'x', anonymousId: 'a', context: { ip: '2001:db8:85a3:1234::8a2e:370:7334' } });
      await tw.app.flush(5000);
      const ips = (path: string) => vendor.hits.filter((h) => h.path === path).flatMap((h) => (h.body as { batch: { context: { ip?: string } }[] }).batch.map((e) => e.context.ip));
      expect(ips('/cut').sort()).toEqual(['2001:db8:85a3::', '203.0.113.0']);
      expect(ips('/whole').sort()).toEqual(['2001:db8:85a3:1234::8a2e:370:7334', '203.0.113.77']);
    } finally {
      await tw.close();
      await vendor.close();
    }
  });
});
