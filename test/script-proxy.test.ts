import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { gzipSync, gunzipSync } from 'node:zlib';
import express from 'express';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler, notFound } from '../src/http/errors.ts';
import { guarded } from '../src/proxy/host-guard.ts';
import { scriptProxyRouter } from '../src/proxy/scripts.ts';
import { closeServer } from './helpers.ts';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}
interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** A fake vendor on 127.0.0.1 recording every request; `reply` is swapped per test. */
async function fakeUpstream() {
  const hits: Recorded[] = [];
  const state: { reply: (h: Recorded) => Reply } = { reply: () => ({ status: 200, body: 'ok' }) };
  const server = createServer((req, res) => {
    const hit = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    hits.push(hit);
    const r = state.reply(hit);
    res.writeHead(r.status, r.headers);
    res.end(r.body ?? '');
  });
  const connections = { count: 0 };
  server.on('connection', () => connections.count++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { server, hits, state, port, connections, url: `http://127.0.0.1:${port}` };
}
type Upstream = Awaited<ReturnType<typeof fakeUpstream>>;

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** node:http, not fetch: fetch would decompress and hide what went over the wire. */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    // The path goes as written: `new URL` would resolve `%2e%2e` before it left.
    const m = /^http:\/\/([^/]+):(\d+)(.*)$/.exec(url)!;
    const req = httpRequest({ host: m[1], port: Number(m[2]), path: m[3] === '' ? '/' : m[3], headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const json = (b: Buffer): any => JSON.parse(b.toString('utf8'));

let google: Upstream;
let meta: Upstream;
let elsewhere: Upstream; // a redirect target / "other" server: must never be contacted
let tagwarden: Server;
let base: string;
const GTAG = '/* gtag.js */ window.dataLayer = window.dataLayer || [];';

beforeAll(async () => {
  [google, meta, elsewhere] = await Promise.all([fakeUpstream(), fakeUpstream(), fakeUpstream()]);
  const app = express();
  app.use(scriptProxyRouter({ origins: { google: google.url, meta: meta.url }, timeoutMs: 500 }));
  app.use(notFound);
  app.use(errorHandler(pino({ level: 'silent' })));
  tagwarden = createServer(guarded([], app));
  base = await listen(tagwarden);
});

afterAll(async () => {
  await closeServer(tagwarden);
  await Promise.all([google, meta, elsewhere].map((u) => closeServer(u.server)));
});

afterEach(() => {
  for (const u of [google, meta, elsewhere]) {
    u.hits.length = 0;
    u.state.reply = () => ({ status: 200, body: 'ok' });
  }
});

describe('script proxy: served scripts', () => {
  it('serves gtag.js with its headers, rebuilding the query from allowed keys', async () => {
    google.state.reply = () => ({
      status: 200,
      headers: { 'content-type': 'application/javascript; charset=UTF-8', 'cache-control': 'private, max-age=900', etag: '"abc"', 'set-cookie': 'NID=1; Domain=.google.com', 'x-internal': 'secret' },
      body: GTAG,
    });
    const res = await rawGet(`${base}/gtag/js?url=http://evil&id=G-ABCD1234&l=dataLayer&x=1`, { cookie: 'tw_vid=v1; _ga=GA1', 'user-agent': 'test-agent' });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(GTAG);
    expect(res.headers['content-type']).toBe('application/javascript; charset=UTF-8');
    expect(res.headers['cache-control']).toBe('private, max-age=900');
    expect(res.headers.etag).toBe('"abc"');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['x-internal']).toBeUndefined();
    expect(google.hits).toHaveLength(1);
    const hit = google.hits[0]!;
    expect(hit.method).toBe('GET');
    expect(hit.url).toBe('/gtag/js?id=G-ABCD1234&l=dataLayer');
    expect(hit.headers.host).toBe(`127.0.0.1:${google.port}`);
    expect(hit.headers.cookie).toBeUndefined();
    expect(hit.headers['x-forwarded-for']).toBeUndefined();
    expect(hit.headers['user-agent']).toBe('test-agent');
    expect(meta.hits).toHaveLength(0);
  });

  it('reuses its upstream connection: script loads one after another open one socket to the vendor', async () => {
    google.state.reply = () => ({ status: 200, headers: { 'content-type': 'application/javascript' }, body: GTAG });
    const before = google.connections.count;
    for (let i = 0; i < 5; i++) {
      const res = await rawGet(`${base}/gtag/js?id=G-ABCD1234`, { connection: 'close' });
      expect(res.status).toBe(200);
    }
    expect(google.hits).toHaveLength(5);
    // The browser's `connection: close` is not passed on (HTTP/1.1 without it is persistent).
    expect(google.hits.map((h) => h.headers.connection)).toEqual(Array(5).fill(undefined));
    expect(google.connections.count - before).toBeLessThanOrEqual(1);
  });

  it('passes a gzip body through byte for byte, and sets a default cache-control', async () => {
    const gz = gzipSync(Buffer.from(GTAG.repeat(50)));
    google.state.reply = () => ({ status: 200, headers: { 'content-type': 'application/javascript', 'content-encoding': 'gzip', vary: 'Accept-Encoding' }, body: gz });
    const res = await rawGet(`${base}/gtm.js?id=GTM-ABC123`, { 'accept-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.body.equals(gz)).toBe(true);
    expect(gunzipSync(res.body).toString()).toBe(GTAG.repeat(50));
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(google.hits[0]!.url).toBe('/gtm.js?id=GTM-ABC123');
    expect(google.hits[0]!.headers['accept-encoding']).toBe('gzip');
  });

  it('serves fbevents.js and the pixel config from the meta origin', async () => {
    meta.state.reply = (h) => ({ status: 200, headers: { 'content-type': 'application/x-javascript' }, body: `meta:${h.url}` });
    const fb = await rawGet(`${base}/en_US/fbevents.js?evil=1`);
    expect(fb.status).toBe(200);
    expect(fb.body.toString()).toBe('meta:/en_US/fbevents.js');
    const cfg = await rawGet(`${base}/signals/config/123456789012345?v=2.9.178&r=stable&target=http://evil`);
    expect(cfg.status).toBe(200);
    expect(cfg.body.toString()).toBe('meta:/signals/config/123456789012345?v=2.9.178&r=stable');
    expect(meta.hits.map((h) => h.url)).toEqual(['/en_US/fbevents.js', '/signals/config/123456789012345?v=2.9.178&r=stable']);
    expect(google.hits).toHaveLength(0);
  });

  it('passes a 304 revalidation through', async () => {
    google.state.reply = (h) => (h.headers['if-none-match'] === '"abc"' ? { status: 304, headers: { etag: '"abc"' } } : { status: 200, body: GTAG });
    const res = await rawGet(`${base}/gtag/js?id=G-ABCD1234`, { 'if-none-match': '"abc"' });
    expect(res.status).toBe(304);
    expect(res.headers.etag).toBe('"abc"');
  });
});

describe('script proxy: refusals without an upstream request', () => {
  it.each([
    '/gtag/js',
    '/gtag/js?id=',
    '/gtag/js?id=UA-12345-1',
    '/gtag/js?id=G-abcd1234',
    '/gtag/js?id=G-ABCD1234%0d%0aX:1',
    '/gtag/js?id=G-ABCD1234&id=G-EFGH5678',
    '/gtag/js?id=G-ABCD1234&l=a.b',
    '/gtm.js?id=G-ABCD1234',
    '/gtm.js?id=GTM-ABCDEFGHIJKLM',
    '/signals/config/12ab45',
    '/signals/config/123456?v=../x',
  ])('%s → 400', async (path) => {
    const res = await rawGet(`${base}${path}`);
    expect(res.status).toBe(400);
    expect(json(res.body).error.code).toBe('TW_ERR_VALIDATION');
    expect(google.hits.length + meta.hits.length).toBe(0);
  });

  it.each(['/gtag/other', '/gtag/js/extra', '/gtag', '/signals/config', '/signals/other/1', '/EN_us/fbevents.js', '/e/fbevents.js', '/gtm.js/x', '/en_US/fbevents.jsx'])(
    '%s → 404',
    async (path) => {
      const res = await rawGet(`${base}${path}`);
      expect(res.status).toBe(404);
      expect(json(res.body).error.code).toBe('TW_ERR_NOT_FOUND');
      expect(google.hits.length + meta.hits.length).toBe(0);
    },
  );

  it('does not proxy other methods', async () => {
    const res = await fetch(`${base}/gtag/js?id=G-ABCD1234`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(404);
    expect(google.hits).toHaveLength(0);
  });

  it.each(['/gtag/js/%2e%2e/x?id=G-ABCD1234', '/../fbevents.js', '/gtag%2fjs?id=G-ABCD1234', '//evil.com/gtag/js?id=G-ABCD1234'])('%s → 400 (host guard)', async (path) => {
    const res = await rawGet(`${base}${path}`);
    expect(res.status).toBe(400);
    expect(google.hits.length + meta.hits.length + elsewhere.hits.length).toBe(0);
  });
});

describe('script proxy: upstream failures', () => {
  it('answers an upstream redirect 502 and does not follow it', async () => {
    google.state.reply = () => ({ status: 302, headers: { location: `${elsewhere.url}/gtag/js?id=G-ABCD1234` } });
    const res = await rawGet(`${base}/gtag/js?id=G-ABCD1234`);
    expect(res.status).toBe(502);
    expect(res.headers.location).toBeUndefined();
    expect(json(res.body)).toEqual({ error: { code: 'TW_ERR_UPSTREAM', message: 'google answered 302' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(elsewhere.hits).toHaveLength(0);
  });

  it('answers an upstream 5xx 502 and an upstream 404 404', async () => {
    google.state.reply = () => ({ status: 503, body: 'down' });
    expect((await rawGet(`${base}/gtag/js?id=G-ABCD1234`)).status).toBe(502);
    google.state.reply = () => ({ status: 404, body: 'nope' });
    const res = await rawGet(`${base}/gtag/js?id=G-ABCD1234`);
    expect(res.status).toBe(404);
    expect(json(res.body).error.code).toBe('TW_ERR_NOT_FOUND');
  });

  it('answers 502 JSON when the upstream times out', async () => {
    const slow = createServer(() => undefined); // accepts, never answers
    const slowUrl = await listen(slow);
    const app = express();
    app.use(scriptProxyRouter({ origins: { google: slowUrl, meta: slowUrl }, timeoutMs: 200 }));
    const srv = createServer(app);
    const url = await listen(srv);
    try {
      const res = await rawGet(`${url}/gtag/js?id=G-ABCD1234`);
      expect(res.status).toBe(502);
      expect(json(res.body).error.code).toBe('TW_ERR_UPSTREAM');
    } finally {
      await closeServer(srv);
      await closeServer(slow);
    }
  });

  it('answers 502 JSON when the upstream refuses connections, and keeps serving', async () => {
    const gone = createServer();
    const goneUrl = await listen(gone);
    await closeServer(gone); // nothing listens on that port any more
    const app = express();
    app.use(scriptProxyRouter({ origins: { google: goneUrl, meta: meta.url }, timeoutMs: 500 }));
    const srv = createServer(app);
    const url = await listen(srv);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await rawGet(`${url}/gtag/js?id=G-ABCD1234`);
        expect(res.status).toBe(502);
        expect(json(res.body)).toEqual({ error: { code: 'TW_ERR_UPSTREAM', message: 'google could not be reached' } });
      }
      meta.state.reply = () => ({ status: 200, body: 'fb' });
      const ok = await rawGet(`${url}/en_US/fbevents.js`);
      expect(ok.status).toBe(200);
      expect(ok.body.toString()).toBe('fb');
    } finally {
      await closeServer(srv);
    }
  });
});

describe('script proxy: never an open proxy', () => {
  /** Writes a raw request and reads the whole answer (the server closes or we stop after the body). */
  function rawRequest(text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const port = Number(new URL(base).port);
      const socket = connect(port, '127.0.0.1', () => socket.end(text));
      let out = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (out += d));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });
  }

  it.each([
    (p: number) => `GET http://127.0.0.1:${p}/ HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nConnection: close\r\n\r\n`,
    (p: number) => `GET http://127.0.0.1:${p}/gtag/js?id=G-ABCD1234 HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nConnection: close\r\n\r\n`,
    (p: number) => `GET http://0x7f.1:${p}/gtag/js?id=G-ABCD1234 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    (p: number) => `GET //127.0.0.1:${p}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
  ])('refuses an absolute-form request-target with 400 (%#)', async (make) => {
    const answer = await rawRequest(make(elsewhere.port));
    expect(answer.startsWith('HTTP/1.1 400')).toBe(true);
    expect(answer).toContain('TW_ERR_VALIDATION');
    await new Promise((r) => setTimeout(r, 50));
    expect(elsewhere.hits).toHaveLength(0);
    expect(google.hits.length + meta.hits.length).toBe(0);
  });

  it('refuses a Host not configured with 421, without an upstream request', async () => {
    const app = express();
    app.use(scriptProxyRouter({ origins: { google: google.url, meta: meta.url } }));
    const srv = createServer(guarded(['tags.example.com'], app));
    const url = await listen(srv);
    try {
      const bad = await rawGet(`${url}/gtag/js?id=G-ABCD1234`, { host: 'evil.com' });
      expect(bad.status).toBe(421);
      expect(google.hits).toHaveLength(0);
      google.state.reply = () => ({ status: 200, body: GTAG });
      const good = await rawGet(`${url}/gtag/js?id=G-ABCD1234`, { host: 'tags.example.com' });
      expect(good.status).toBe(200);
      expect(google.hits).toHaveLength(1);
      expect(google.hits[0]!.headers.host).toBe(`127.0.0.1:${google.port}`);
    } finally {
      await closeServer(srv);
    }
  });
});
