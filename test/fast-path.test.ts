import { once } from 'node:events';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type TagwardenApp } from '../src/app.ts';
import { loadTemplates } from '../src/destinations/load.ts';
import type { Event } from '../src/ingest/event.ts';
import { withFastPaths } from '../src/ingest/fast-path.ts';
import { ga4FastRoute } from '../src/ingest/ga4-fast-path.ts';
import { metaPixelFastRoutes } from '../src/ingest/meta-pixel-fast-path.ts';
import { segmentFastRoutes } from '../src/ingest/segment-fast-path.ts';
import { createHttpServer } from '../src/http/server.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { closeServer, testConfig } from './helpers.ts';

/**
 * The fast path answers the ordinary Segment, GA4 and Meta pixel hit without Express and hands anything else
 * to it. Shown here: which requests it takes, and that for every request — taken or not — the
 * answer is the one the Express routes alone give.
 */

interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

/** A raw request (fetch would refuse some of these: odd Host headers, huge declared lengths). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const pick = ['content-type', 'access-control-allow-origin', 'access-control-allow-credentials', 'vary', 'set-cookie', 'connection'];
        resolve({ status: res.statusCode ?? 0, headers: Object.fromEntries(pick.map((h) => [h, res.headers[h] as string | undefined])), body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function listen(listener: RequestListener, limits: Parameters<typeof createHttpServer>[0]): Promise<{ server: Server; port: number }> {
  const server = createHttpServer(limits, listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

const event = { anonymousId: 'a-1', event: 'Signed Up', messageId: 'fixed-id', timestamp: '2026-11-23T10:00:00.000Z', context: { consent: { categoryPreferences: { analytics: true } } } };
const json = { 'content-type': 'application/json', host: 'tags.example.com', origin: 'https://www.example.com' };
const ga4 = 'v=2&tid=G-TEST1&cid=111.222&_p=9&_s=1';
const pixel = 'id=1234567890&ev=PageView&eid=ev-1&dl=https%3A%2F%2Fshop.example%2F&fbp=fb.1.1700000000000.42';
/** A form as a browser's FormData encoding gives it (what fbevents.js's sendBeacon(FormData) posts). */
const boundary = '----WebKitFormBoundaryTagwarden01';
const multipart = (fields: [string, string][]): string =>
  fields.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') + `--${boundary}--\r\n`;
const beacon = multipart([['id', '1234567890'], ['ev', 'AddToCart'], ['eid', 'ev-2'], ['cd[value]', '3'], ['rqm', 'SB']]);
const multipartType = { host: 'tags.example.com', 'content-type': `multipart/form-data; boundary=${boundary}` };

/** Requests and whether the fast path answers them itself. */
const requests: Array<{ name: string; method: string; path: string; headers: Record<string, string>; body?: string; fast: boolean }> = [
  { name: 'a valid track', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify(event), fast: true },
  { name: 'a valid page on a short route, as text/plain (sendBeacon)', method: 'POST', path: '/v1/p', headers: { ...json, 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify({ ...event, event: undefined, name: 'Home' }), fast: true },
  { name: 'an anonymous analytics-next track (userId null)', method: 'POST', path: '/v1/t', headers: { ...json, 'content-type': 'text/plain' }, body: JSON.stringify({ ...event, userId: null, properties: null, context: { ...event.context, page: { url: 'https://www.example.com/', referrer: null } } }), fast: true },
  { name: 'an analytics.js classic page (name and category null)', method: 'POST', path: '/v1/p', headers: json, body: JSON.stringify({ ...event, event: undefined, userId: null, name: null, category: null }), fast: true },
  { name: 'a batch with userId null', method: 'POST', path: '/v1/b', headers: json, body: JSON.stringify({ batch: [{ ...event, type: 'track', userId: null }, { ...event, type: 'identify', event: undefined, userId: 'u-1', anonymousId: null }] }), fast: true },
  { name: 'a null where no library sends one', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify({ ...event, integrations: null }), fast: false },
  { name: 'an invalid event', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify({ ...event, event: 42 }), fast: false },
  { name: 'malformed JSON', method: 'POST', path: '/v1/track', headers: json, body: '{"event":', fast: false },
  { name: 'an empty body', method: 'POST', path: '/v1/identify', headers: json, body: '', fast: false },
  { name: 'a body over the limit (no length declared)', method: 'POST', path: '/v1/track', headers: { ...json, 'transfer-encoding': 'chunked' }, body: JSON.stringify({ ...event, properties: { pad: 'x'.repeat(3000) } }), fast: false },
  { name: 'a declared length over the limit', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify({ ...event, properties: { pad: 'x'.repeat(3000) } }), fast: false },
  { name: 'an unsupported content type', method: 'POST', path: '/v1/track', headers: { ...json, 'content-type': 'application/xml' }, body: '<x/>', fast: false },
  { name: 'a compressed body', method: 'POST', path: '/v1/track', headers: { ...json, 'content-encoding': 'gzip' }, body: 'zz', fast: false },
  { name: 'a Host not served', method: 'POST', path: '/v1/track', headers: { ...json, host: 'evil.example' }, body: JSON.stringify(event), fast: false },
  { name: 'a query string', method: 'POST', path: '/v1/track?x=1', headers: json, body: JSON.stringify(event), fast: false },
  { name: 'a CORS preflight', method: 'OPTIONS', path: '/v1/track', headers: { ...json, 'access-control-request-method': 'POST' }, fast: false },
  { name: 'a batch', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: [{ ...event, type: 'track' }, { ...event, type: 'page', name: 'Home', event: undefined }], context: { locale: 'de-DE' } }), fast: true },
  { name: 'an empty batch', method: 'POST', path: '/v1/b', headers: json, body: JSON.stringify({ batch: [] }), fast: true },
  { name: 'a batch with an invalid event (partial report)', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: [{ ...event, type: 'track' }, { type: 'track' }] }), fast: false },
  { name: 'a batch of invalid events only', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: [{ type: 'track' }] }), fast: false },
  { name: 'a batch over the event count', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: Array.from({ length: 4 }, () => ({ ...event, type: 'track' })) }), fast: false },
  { name: 'not a batch', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ events: [] }), fast: false },
  { name: 'an unknown route', method: 'POST', path: '/v1/nope', headers: json, body: '{}', fast: false },
  { name: 'an origin not allowed (no CORS headers)', method: 'POST', path: '/v1/track', headers: { ...json, origin: 'https://evil.example' }, body: JSON.stringify(event), fast: true },
  { name: 'a trailing slash', method: 'POST', path: '/v1/track/', headers: json, body: JSON.stringify(event), fast: false },
  { name: 'an upper-case path', method: 'POST', path: '/V1/TRACK', headers: json, body: JSON.stringify(event), fast: false },
  { name: 'an absolute-form request target', method: 'POST', path: 'http://tags.example.com/v1/track', headers: json, body: JSON.stringify(event), fast: false },
  { name: 'a GA4 GET hit', method: 'GET', path: `/g/collect?${ga4}&en=page_view`, headers: { host: 'tags.example.com' }, fast: true },
  { name: 'a GA4 POST with three hits (one invalid)', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com', 'content-type': 'text/plain' }, body: 'en=a\nen=\nen=purchase&epn.value=3', fast: true },
  { name: 'a GA4 POST without hits', method: 'POST', path: '/g/collect', headers: { host: 'tags.example.com' }, body: '', fast: true },
  { name: 'a GA4 body over the limit', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com', 'transfer-encoding': 'chunked' }, body: `en=x&ep.pad=${'x'.repeat(5000)}`, fast: false },
  { name: 'a GA4 declared length over the limit', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com' }, body: `en=x&ep.pad=${'x'.repeat(5000)}`, fast: false },
  { name: 'a compressed GA4 body', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com', 'content-encoding': 'gzip' }, body: 'zz', fast: false },
  { name: 'a GA4 HEAD', method: 'HEAD', path: `/g/collect?${ga4}&en=x`, headers: { host: 'tags.example.com' }, fast: false },
  { name: 'a GA4 hit for a Host not served', method: 'GET', path: `/g/collect?${ga4}&en=x`, headers: { host: 'other.example' }, fast: false },
  { name: 'a pixel image request', method: 'GET', path: `/tr?${pixel}`, headers: { host: 'tags.example.com' }, fast: true },
  { name: 'a pixel image request on /tr/', method: 'GET', path: `/tr/?${pixel}`, headers: { host: 'tags.example.com' }, fast: true },
  { name: 'an invalid pixel hit (no event)', method: 'GET', path: '/tr?id=1234567890', headers: { host: 'tags.example.com' }, fast: true },
  { name: 'a pixel POST form', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'application/x-www-form-urlencoded' }, body: pixel.replace('PageView', 'Purchase'), fast: true },
  { name: 'a pixel POST multipart (sendBeacon FormData)', method: 'POST', path: '/tr/', headers: multipartType, body: beacon, fast: true },
  { name: 'a pixel POST multipart without fields (an invalid hit)', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--', fast: true },
  { name: 'a pixel POST multipart cut short', method: 'POST', path: '/tr', headers: multipartType, body: beacon.slice(0, -12), fast: false },
  { name: 'a pixel POST multipart without a boundary', method: 'POST', path: '/tr', headers: { ...multipartType, 'content-type': 'multipart/form-data' }, body: beacon, fast: false },
  { name: 'a pixel POST multipart over the limit', method: 'POST', path: '/tr', headers: { ...multipartType, 'transfer-encoding': 'chunked' }, body: multipart([['id', '1'], ['ev', 'X'], ['cd[pad]', 'x'.repeat(3000)]]), fast: false },
  { name: 'a pixel POST over the limit', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'text/plain', 'transfer-encoding': 'chunked' }, body: `${pixel}&cd[pad]=${'x'.repeat(3000)}`, fast: false },
  { name: 'a pixel POST declaring too much', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'text/plain' }, body: `${pixel}&cd[pad]=${'x'.repeat(3000)}`, fast: false },
];

describe('the fast path for Segment, GA4 and pixel hits', () => {
  const templates = loadTemplates();
  const config = testConfig({
    server: { allowedHosts: ['tags.example.com'], allowedOrigins: ['https://www.example.com'], maxEventBytes: 2048, maxBatchBytes: 4096, maxBatchEvents: 3 },
    site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
    destinations: [],
  });
  let app: TagwardenApp;
  let viaHandler: { server: Server; port: number };
  let viaExpress: { server: Server; port: number };

  beforeAll(async () => {
    app = createApp(config, { logger: pino({ level: 'silent' }), templates });
    viaHandler = await listen(app.handler, config.server);
    viaExpress = await listen(app.express, config.server);
  });
  afterAll(async () => {
    await app.shutdown(1000);
    await closeServer(viaHandler.server);
    await closeServer(viaExpress.server);
  });

  it.each(requests.map((r) => [r.name, r] as const))('%s: the same answer as the Express routes alone', async (_name, r) => {
    const fast = await send(viaHandler.port, r.method, r.path, r.headers, r.body);
    const plain = await send(viaExpress.port, r.method, r.path, r.headers, r.body);
    expect(fast).toEqual(plain);
  });

  it('takes exactly the ordinary hits, and hands the rest to Express with the body it read', async () => {
    const accepted: Event[] = [];
    let fallbacks = 0;
    const express = app.express;
    const hit = { trustProxyHops: 1, metrics: createMetrics(), accepting: () => true, accept: (e: Event) => accepted.push(e) };
    const listener = withFastPaths(
      { allowedHosts: ['tags.example.com'], accepting: () => true },
      new Map([
        ...segmentFastRoutes({ ...hit, maxEventBytes: 2048, maxBatchBytes: 4096, maxBatchEvents: 3, allowedOrigins: ['*'] }),
        ...ga4FastRoute({ ...hit, maxBytes: 4096 }),
        ...metaPixelFastRoutes({ ...hit, maxBytes: 2048 }),
      ]),
      (req, res) => {
        fallbacks++;
        express(req, res);
      },
    );
    const { server, port } = await listen(listener, config.server);
    try {
      for (const r of requests) {
        const before = fallbacks;
        await send(port, r.method, r.path, { ...r.headers, 'x-forwarded-for': '198.51.100.7' }, r.body);
        expect(fallbacks - before, r.name).toBe(r.fast ? 0 : 1);
      }
    } finally {
      await closeServer(server);
    }
    expect(accepted.map((e) => [e.type, e.event ?? e.name, e.context.ip])).toEqual([
      ['track', 'Signed Up', '198.51.100.7'],
      ['page', 'Home', '198.51.100.7'],
      ['track', 'Signed Up', '198.51.100.7'],
      ['page', undefined, '198.51.100.7'],
      ['track', 'Signed Up', '198.51.100.7'],
      ['identify', undefined, '198.51.100.7'],
      ['track', 'Signed Up', '198.51.100.7'],
      ['page', 'Home', '198.51.100.7'],
      ['track', 'Signed Up', '198.51.100.7'],
      ['page', undefined, '198.51.100.7'],
      ['track', 'a', '198.51.100.7'],
      ['track', 'purchase', '198.51.100.7'],
      ['page', undefined, '198.51.100.7'],
      ['page', undefined, '198.51.100.7'],
      ['track', 'Purchase', '198.51.100.7'],
      ['track', 'AddToCart', '198.51.100.7'],
    ]);
  });

  it('during shutdown hits are refused with 503 by the Express route, never acknowledged', async () => {
    const own = createApp(config, { logger: pino({ level: 'silent' }), templates });
    const srv = createServer(own.handler);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    await own.shutdown(100);
    const port = (srv.address() as AddressInfo).port;
    const r = await send(port, 'POST', '/v1/track', json, JSON.stringify(event));
    const g = await send(port, 'GET', `/g/collect?${ga4}&en=x`, { host: 'tags.example.com' });
    const p = await send(port, 'GET', `/tr?${pixel}`, { host: 'tags.example.com' });
    await closeServer(srv);
    for (const answer of [r, g, p]) {
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'TW_ERR_UNAVAILABLE' } });
    }
  });
});
