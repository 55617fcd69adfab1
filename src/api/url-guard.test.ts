import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { assertWebhookUrl, BlockedAddressError, checkWebhookUrl, classifyAddress, createGuardedAgent, createGuardedLookup, type LookupAll } from './url-guard.ts';

const reason = (url: string, opts = {}): string | undefined => {
  const r = checkWebhookUrl(url, opts);
  return r.ok ? undefined : r.reason;
};

describe('classifyAddress', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fec0::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:100.64.0.1', 'cgnat'],
    ['0:0:0:0:0:ffff:192.168.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b:1::1', 'private'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:a9fe:a9fe::', 'link-local'],
    ['2001::1', 'reserved'],
    ['100::1', 'reserved'],
    ['[::1]', 'loopback'],
    ['not-an-ip', 'reserved'],
  ])('%s is %s', (address, range) => {
    expect(classifyAddress(address)).toBe(range);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '100.63.255.255', '100.128.0.1', '169.253.0.1', '2606:4700::1111', '2a00:1450:4001::200e', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'])('%s is public', (address) => {
    expect(classifyAddress(address)).toBeUndefined();
  });
});

describe('checkWebhookUrl', () => {
  it.each(['https://hooks.example.com/consent', 'http://hooks.example.com:8080/a?b=c', 'https://8.8.8.8/x', 'https://[2606:4700::1111]/x', 'https://EXAMPLE.com./a'])('accepts %s', (url) => {
    expect(reason(url)).toBeUndefined();
  });

  it('normalises the URL it accepts', () => {
    const r = checkWebhookUrl('https://Hooks.Example.COM/a');
    expect(r.ok && r.url.href).toBe('https://hooks.example.com/a');
  });

  it.each([
    ['ftp://example.com/', /scheme/],
    ['file:///etc/passwd', /scheme/],
    ['javascript:alert(1)', /scheme/],
    ['gopher://example.com/', /scheme/],
    ['example.com/hook', /absolute/],
    ['', /empty/],
    ['https://user:pass@example.com/', /credentials/],
    ['https://user@example.com/', /credentials/],
    ['https://exa mple.com/', /whitespace/],
    ['https://example.com/\n', /whitespace/],
    ['https:\\\\example.com/', /backslash/],
    [`https://example.com/${'a'.repeat(3000)}`, /longer/],
    ['http://127.0.0.1/', /loopback/],
    ['http://127.0.0.1:8080/hook', /loopback/],
    ['http://10.1.2.3/', /private/],
    ['http://172.16.0.1/', /private/],
    ['http://192.168.0.10/', /private/],
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['http://100.64.0.1/', /cgnat/],
    ['http://0.0.0.0/', /unspecified/],
    ['http://224.0.0.1/', /multicast/],
    ['http://255.255.255.255/', /broadcast/],
    ['http://[::1]/', /loopback/],
    ['http://[::]/', /unspecified/],
    ['http://[fd00::1]/', /private/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[ff02::1]/', /multicast/],
    ['http://[::ffff:127.0.0.1]/', /loopback/],
    ['http://[::ffff:169.254.169.254]/', /link-local/],
    ['http://[::ffff:10.0.0.1]/', /private/],
    ['http://localhost/', /loopback/],
    ['http://LOCALHOST:3000/', /loopback/],
    ['http://api.localhost/', /loopback/],
    // Ambiguous IPv4 notations, public targets included: the plain dotted form must be written.
    ['http://2130706433/', /ambiguous/],
    ['http://0x7f000001/', /ambiguous/],
    ['http://0x7f.0.0.1/', /ambiguous/],
    ['http://0177.0.0.1/', /ambiguous/],
    ['http://0177.1/', /ambiguous/],
    ['http://127.1/', /ambiguous/],
    ['http://127.0.1/', /ambiguous/],
    ['http://127.0.0.1./', /ambiguous/],
    ['http://010.0.0.1/', /ambiguous/],
    ['http://134744072/', /ambiguous/],
    ['http://%31%32%37.0.0.1/', /ambiguous/],
  ])('refuses %s', (url, why) => {
    expect(reason(url)).toMatch(why);
  });

  it('allowPrivate lifts the address checks, not the others', () => {
    const allow = { allowPrivate: true };
    for (const url of ['http://127.0.0.1:9/', 'http://[::1]/', 'http://10.0.0.1/', 'http://localhost/', 'http://169.254.169.254/']) expect(reason(url, allow)).toBeUndefined();
    expect(reason('ftp://127.0.0.1/', allow)).toMatch(/scheme/);
    expect(reason('http://2130706433/', allow)).toMatch(/ambiguous/);
    expect(reason('http://u:p@127.0.0.1/', allow)).toMatch(/credentials/);
  });

  it('allowHosts lifts the address checks for the listed hosts only', () => {
    const opts = { allowHosts: ['127.0.0.1', 'Receiver.Internal', '[::1]'] };
    expect(reason('http://127.0.0.1:8080/', opts)).toBeUndefined();
    expect(reason('http://[::1]/', opts)).toBeUndefined();
    expect(reason('http://localhost/', { allowHosts: ['localhost'] })).toBeUndefined();
    expect(reason('http://127.0.0.2/', opts)).toMatch(/loopback/);
    expect(reason('http://10.0.0.1/', opts)).toMatch(/private/);
    expect(reason('http://0x7f.0.0.1/', opts)).toMatch(/ambiguous/);
  });

  it('assertWebhookUrl throws a ValidationError naming the reason', () => {
    expect(() => assertWebhookUrl('http://10.0.0.1/')).toThrow(ValidationError);
    expect(() => assertWebhookUrl('http://10.0.0.1/')).toThrow(/url: address 10.0.0.1 is private/);
    expect(assertWebhookUrl('https://example.com/x').hostname).toBe('example.com');
  });
});

/** A resolver from a fixed table: no DNS in tests. */
function fakeDns(table: Record<string, string[]>): LookupAll {
  return (hostname, _options, callback) => {
    const list = table[hostname];
    if (list === undefined) {
      const e: NodeJS.ErrnoException = new Error('not found');
      e.code = 'ENOTFOUND';
      callback(e, []);
      return;
    }
    callback(
      null,
      list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

function lookupOnce(fn: ReturnType<typeof createGuardedLookup>, host: string, all: boolean): Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family: unknown }> {
  return new Promise((resolve) => {
    fn(host, { all }, (err, address, family) => resolve({ err, address, family }));
  });
}

describe('createGuardedLookup', () => {
  const lookup = fakeDns({ 'public.test': ['8.8.8.8', '2606:4700::1111'], 'rebind.test': ['127.0.0.1'], 'mixed.test': ['8.8.8.8', '10.0.0.1'], 'mapped.test': ['::ffff:169.254.169.254'] });

  it('passes public answers through, in both callback shapes', async () => {
    const fn = createGuardedLookup({ lookup });
    expect(await lookupOnce(fn, 'public.test', false)).toEqual({ err: null, address: '8.8.8.8', family: 4 });
    const all = await lookupOnce(fn, 'public.test', true);
    expect(all.err).toBeNull();
    expect(all.address).toEqual([
      { address: '8.8.8.8', family: 4 },
      { address: '2606:4700::1111', family: 6 },
    ]);
  });

  it.each(['rebind.test', 'mixed.test', 'mapped.test'])('fails %s with a BlockedAddressError', async (host) => {
    const { err } = await lookupOnce(createGuardedLookup({ lookup }), host, true);
    expect(err).toBeInstanceOf(BlockedAddressError);
    expect(err!.code).toBe('ERR_WEBHOOK_ADDRESS_BLOCKED');
  });

  it('lets allowed hosts and allowPrivate through, and reports resolver errors', async () => {
    expect((await lookupOnce(createGuardedLookup({ lookup, allowHosts: ['rebind.test'] }), 'rebind.test', false)).address).toBe('127.0.0.1');
    expect((await lookupOnce(createGuardedLookup({ lookup, allowPrivate: true }), 'mixed.test', false)).err).toBeNull();
    expect((await lookupOnce(createGuardedLookup({ lookup }), 'nowhere.test', false)).err!.code).toBe('ENOTFOUND');
  });
});

describe('createGuardedAgent', () => {
  it('connects to the checked address, and refuses a name that resolves to a refused one', async () => {
    const server = createServer((_req, res) => res.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const lookup = fakeDns({ 'receiver.test': ['127.0.0.1'], 'evil.test': ['127.0.0.1'] });
    const agent = createGuardedAgent({ lookup, allowHosts: ['receiver.test'] });
    try {
      const ok = await request(`http://receiver.test:${port}/`, { dispatcher: agent });
      expect(ok.statusCode).toBe(200);
      expect(await ok.body.text()).toBe('hello');
      const refused = await request(`http://evil.test:${port}/`, { dispatcher: agent }).then(
        () => undefined,
        (err: unknown) => err as NodeJS.ErrnoException,
      );
      expect(refused?.code).toBe('ERR_WEBHOOK_ADDRESS_BLOCKED');
    } finally {
      await agent.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
