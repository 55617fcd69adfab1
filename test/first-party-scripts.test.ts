import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, startTagwarden, testConfig } from './helpers.ts';

/** The script proxy and the host guard as the app mounts them (config `scripts`, `server.allowedHosts`). */
describe('first-party scripts through the app', () => {
  const seen: string[] = [];
  const google = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/javascript', 'set-cookie': 'tracker=1' }).end('/* gtag */');
  });
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let port = 0;

  beforeAll(async () => {
    google.listen(0, '127.0.0.1');
    await once(google, 'listening');
    const origin = `http://127.0.0.1:${(google.address() as AddressInfo).port}`;
    tw = await startTagwarden(
      testConfig({ server: { allowedHosts: ['tags.example.com', '127.0.0.1'] }, site: { id: 'shop', categories: {} }, scripts: { enabled: true, origins: { google: origin, meta: origin } } }),
    );
    port = Number(new URL(tw.url).port);
  });
  afterAll(async () => {
    await tw.close();
    await closeServer(google);
  });

  function raw(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(request));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      // Every request says Connection: close: the answer ends with the socket (a hang is the test timeout's).
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
  }

  it('serves gtag.js first-party, with the query rebuilt and no upstream cookie', async () => {
    const r = await fetch(`${tw.url}/gtag/js?id=G-TEST1234&url=http://evil.example`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('/* gtag */');
    expect(r.headers.get('set-cookie')).toBeNull();
    expect(seen.at(-1)).toBe('/gtag/js?id=G-TEST1234');
  });

  it('refuses absolute-URL request targets (400) and unknown hosts (421); health probes answer any host', async () => {
    const before = seen.length;
    expect(await raw(`GET http://127.0.0.1:${(google.address() as AddressInfo).port}/gtag/js?id=G-TEST1234 HTTP/1.1\r\nHost: tags.example.com\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1.1 400/);
    expect(await raw('GET /gtag/js?id=G-TEST1234 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1.1 421/);
    expect(await raw('GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:8080\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1.1 200/);
    expect(seen.length).toBe(before);
  });
});
