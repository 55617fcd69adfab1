import { once } from 'node:events';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type TagwardenApp } from '../src/app.ts';
import { loadTemplates } from '../src/destinations/load.ts';
import type { Event } from '../src/ingest/event.ts';
import { ga4Routes } from '../src/ingest/ga4-routes.ts';
import { metaPixelRoutes } from '../src/ingest/meta-pixel-routes.ts';
import { segmentRoutes } from '../src/ingest/segment-routes.ts';
import { createHttpServer } from '../src/http/server.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { guarded } from '../src/proxy/host-guard.ts';
import { closeServer, testConfig } from './helpers.ts';
import { routesListener } from './hit-routes-listener.ts';

/**
 * The hit routes of every client (Segment, GA4, the Meta pixel) as the app serves them: the request
 * guard, then the one implementation of each route on node:http (src/http/hit-router.ts), Express
 * for anything else. Shown here: the answer to ordinary hits and to every kind of refusal, path
 * matching as Express's (case, trailing slash), 405 for a method a route does not take, and the
 * events each request hands on.
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
        const pick = ['content-type', 'access-control-allow-origin', 'access-control-allow-credentials', 'vary', 'set-cookie', 'connection', 'allow', 'cache-control', 'x-request-id'];
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

interface Expected {
  status: number;
  /** The CORS headers of an allowed origin are on the answer. */
  cors?: true;
  /** The JSON body, exactly. */
  json?: unknown;
  /** The 1×1 GIF of an image request. */
  gif?: true;
  /** The Allow header (405, OPTIONS without CORS). */
  allow?: string;
}

/** Requests and their answers. */
const requests: Array<{ name: string; method: string; path: string; headers: Record<string, string>; body?: string; answer: Expected }> = [
  { name: 'a valid track', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify(event), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'a valid page on a short route, as text/plain (sendBeacon)', method: 'POST', path: '/v1/p', headers: { ...json, 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify({ ...event, event: undefined, name: 'Home' }), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'an anonymous analytics-next track (userId null)', method: 'POST', path: '/v1/t', headers: { ...json, 'content-type': 'text/plain' }, body: JSON.stringify({ ...event, userId: null, properties: null, context: { ...event.context, page: { url: 'https://www.example.com/', referrer: null } } }), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'an analytics.js classic page (name and category null)', method: 'POST', path: '/v1/p', headers: json, body: JSON.stringify({ ...event, event: undefined, userId: null, name: null, category: null }), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'a batch with userId null', method: 'POST', path: '/v1/b', headers: json, body: JSON.stringify({ batch: [{ ...event, type: 'track', userId: null }, { ...event, type: 'identify', event: undefined, userId: 'u-1', anonymousId: null }] }), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'a null where no library sends one', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify({ ...event, integrations: null }), answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_VALIDATION', message: 'integrations: Invalid input: expected record, received null', details: { issues: [{ path: 'integrations', message: 'Invalid input: expected record, received null' }] } } } } },
  { name: 'an invalid event', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify({ ...event, event: 42 }), answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_VALIDATION', message: 'event: Invalid input: expected string, received number', details: { issues: [{ path: 'event', message: 'Invalid input: expected string, received number' }] } } } } },
  { name: 'malformed JSON', method: 'POST', path: '/v1/track', headers: json, body: '{"event":', answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_MALFORMED_BODY', message: 'the body is not valid JSON: Unexpected end of JSON input' } } } },
  { name: 'an empty body', method: 'POST', path: '/v1/identify', headers: json, body: '', answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_MALFORMED_BODY', message: 'the body is empty; send a JSON object' } } } },
  { name: 'a body over the limit (no length declared)', method: 'POST', path: '/v1/track', headers: { ...json, 'transfer-encoding': 'chunked' }, body: JSON.stringify({ ...event, properties: { pad: 'x'.repeat(3000) } }), answer: { status: 413, cors: true, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 2048 bytes', details: { limit: 2048 } } } } },
  { name: 'a declared length over the limit', method: 'POST', path: '/v1/track', headers: json, body: JSON.stringify({ ...event, properties: { pad: 'x'.repeat(3000) } }), answer: { status: 413, cors: true, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 2048 bytes', details: { limit: 2048 } } } } },
  { name: 'an unsupported content type', method: 'POST', path: '/v1/track', headers: { ...json, 'content-type': 'application/xml' }, body: '<x/>', answer: { status: 415, cors: true, json: { error: { code: 'TW_ERR_UNSUPPORTED_MEDIA_TYPE', message: 'content type application/xml is not accepted; send application/json or text/plain' } } } },
  { name: 'a compressed body', method: 'POST', path: '/v1/track', headers: { ...json, 'content-encoding': 'gzip' }, body: 'zz', answer: { status: 415, cors: true, json: { error: { code: 'TW_ERR_UNSUPPORTED_MEDIA_TYPE', message: 'content encoding gzip is not accepted' } } } },
  { name: 'a Host not served', method: 'POST', path: '/v1/track', headers: { ...json, host: 'evil.example' }, body: JSON.stringify(event), answer: { status: 421, json: { error: { code: 'TW_ERR_MISDIRECTED', message: 'this server does not serve that host' } } } },
  { name: 'a query string', method: 'POST', path: '/v1/track?x=1', headers: json, body: JSON.stringify(event), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'a CORS preflight', method: 'OPTIONS', path: '/v1/track', headers: { ...json, 'access-control-request-method': 'POST' }, answer: { status: 204, cors: true } },
  { name: 'a batch', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: [{ ...event, type: 'track' }, { ...event, type: 'page', name: 'Home', event: undefined }], context: { locale: 'de-DE' } }), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'an empty batch', method: 'POST', path: '/v1/b', headers: json, body: JSON.stringify({ batch: [] }), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'a batch with an invalid event (partial report)', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: [{ ...event, type: 'track' }, { type: 'track' }] }), answer: { status: 200, cors: true, json: { success: true, accepted: 1, rejected: [{ index: 1, issues: [{ path: 'event', message: 'required' }] }] } } },
  { name: 'a batch of invalid events only', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: [{ type: 'track' }] }), answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_VALIDATION', message: 'no valid event in the batch', details: { rejected: [{ index: 0, issues: [{ path: 'event', message: 'required' }] }] } } } } },
  { name: 'a batch over the event count', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ batch: Array.from({ length: 4 }, () => ({ ...event, type: 'track' })) }), answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_VALIDATION', message: 'batch: at most 3 events per request', details: { issues: [{ path: 'batch', message: 'more than 3 events' }] } } } } },
  { name: 'not a batch', method: 'POST', path: '/v1/batch', headers: json, body: JSON.stringify({ events: [] }), answer: { status: 400, cors: true, json: { error: { code: 'TW_ERR_VALIDATION', message: 'batch: required, an array of events', details: { issues: [{ path: 'batch', message: 'required' }] } } } } },
  { name: 'an unknown route', method: 'POST', path: '/v1/nope', headers: json, body: '{}', answer: { status: 404, json: { error: { code: 'TW_ERR_NOT_FOUND', message: 'no route for POST /v1/nope' } } } },
  { name: 'an origin not allowed (no CORS headers)', method: 'POST', path: '/v1/track', headers: { ...json, origin: 'https://evil.example' }, body: JSON.stringify(event), answer: { status: 200, json: { success: true } } },
  { name: 'a trailing slash', method: 'POST', path: '/v1/track/', headers: json, body: JSON.stringify(event), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'an upper-case path', method: 'POST', path: '/V1/TRACK', headers: json, body: JSON.stringify(event), answer: { status: 200, cors: true, json: { success: true } } },
  { name: 'an absolute-form request target', method: 'POST', path: 'http://tags.example.com/v1/track', headers: json, body: JSON.stringify(event), answer: { status: 400, json: { error: { code: 'TW_ERR_VALIDATION', message: 'request-target must be a path (this server is not a proxy)' } } } },
  { name: 'a GA4 GET hit', method: 'GET', path: `/g/collect?${ga4}&en=page_view`, headers: { host: 'tags.example.com' }, answer: { status: 204 } },
  { name: 'a GA4 POST with three hits (one invalid)', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com', 'content-type': 'text/plain' }, body: 'en=a\nen=\nen=purchase&epn.value=3', answer: { status: 204 } },
  { name: 'a GA4 POST without hits', method: 'POST', path: '/g/collect', headers: { host: 'tags.example.com' }, body: '', answer: { status: 204 } },
  { name: 'a GA4 body over the limit', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com', 'transfer-encoding': 'chunked' }, body: `en=x&ep.pad=${'x'.repeat(5000)}`, answer: { status: 413, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 4096 bytes', details: { limit: 4096 } } } } },
  { name: 'a GA4 declared length over the limit', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com' }, body: `en=x&ep.pad=${'x'.repeat(5000)}`, answer: { status: 413, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 4096 bytes', details: { limit: 4096 } } } } },
  { name: 'a compressed GA4 body', method: 'POST', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com', 'content-encoding': 'gzip' }, body: 'zz', answer: { status: 204 } },
  { name: 'a GA4 HEAD', method: 'HEAD', path: `/g/collect?${ga4}&en=x`, headers: { host: 'tags.example.com' }, answer: { status: 204 } },
  { name: 'a GA4 hit for a Host not served', method: 'GET', path: `/g/collect?${ga4}&en=x`, headers: { host: 'other.example' }, answer: { status: 421, json: { error: { code: 'TW_ERR_MISDIRECTED', message: 'this server does not serve that host' } } } },
  { name: 'a pixel image request', method: 'GET', path: `/tr?${pixel}`, headers: { host: 'tags.example.com' }, answer: { status: 200, gif: true } },
  { name: 'a pixel image request on /tr/', method: 'GET', path: `/tr/?${pixel}`, headers: { host: 'tags.example.com' }, answer: { status: 200, gif: true } },
  { name: 'an invalid pixel hit (no event)', method: 'GET', path: '/tr?id=1234567890', headers: { host: 'tags.example.com' }, answer: { status: 200, gif: true } },
  { name: 'a pixel POST form', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'application/x-www-form-urlencoded' }, body: pixel.replace('PageView', 'Purchase'), answer: { status: 204 } },
  { name: 'a pixel POST multipart (sendBeacon FormData)', method: 'POST', path: '/tr/', headers: multipartType, body: beacon, answer: { status: 204 } },
  { name: 'a pixel POST multipart without fields (an invalid hit)', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--', answer: { status: 204 } },
  { name: 'a pixel POST multipart cut short', method: 'POST', path: '/tr', headers: multipartType, body: beacon.slice(0, -12), answer: { status: 204 } },
  { name: 'a pixel POST multipart without a boundary', method: 'POST', path: '/tr', headers: { ...multipartType, 'content-type': 'multipart/form-data' }, body: beacon, answer: { status: 204 } },
  { name: 'a pixel POST multipart over the limit', method: 'POST', path: '/tr', headers: { ...multipartType, 'transfer-encoding': 'chunked' }, body: multipart([['id', '1'], ['ev', 'X'], ['cd[pad]', 'x'.repeat(3000)]]), answer: { status: 413, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 2048 bytes', details: { limit: 2048 } } } } },
  { name: 'a pixel POST over the limit', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'text/plain', 'transfer-encoding': 'chunked' }, body: `${pixel}&cd[pad]=${'x'.repeat(3000)}`, answer: { status: 413, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 2048 bytes', details: { limit: 2048 } } } } },
  { name: 'a pixel POST declaring too much', method: 'POST', path: '/tr', headers: { host: 'tags.example.com', 'content-type': 'text/plain' }, body: `${pixel}&cd[pad]=${'x'.repeat(3000)}`, answer: { status: 413, json: { error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 2048 bytes', details: { limit: 2048 } } } } },
  { name: 'a GET of a Segment route', method: 'GET', path: '/v1/track', headers: json, answer: { status: 405, cors: true, allow: 'POST, OPTIONS', json: { error: { code: 'TW_ERR_METHOD_NOT_ALLOWED', message: '/v1/track takes POST, OPTIONS' } } } },
  { name: 'a PUT of the batch route, upper case', method: 'PUT', path: '/V1/Batch', headers: json, body: '{}', answer: { status: 405, cors: true, allow: 'POST, OPTIONS', json: { error: { code: 'TW_ERR_METHOD_NOT_ALLOWED', message: '/V1/Batch takes POST, OPTIONS' } } } },
  { name: 'a DELETE of /g/collect', method: 'DELETE', path: `/g/collect?${ga4}`, headers: { host: 'tags.example.com' }, answer: { status: 405, allow: 'GET, HEAD, POST, OPTIONS', json: { error: { code: 'TW_ERR_METHOD_NOT_ALLOWED', message: '/g/collect takes GET, HEAD, POST, OPTIONS' } } } },
  { name: 'an OPTIONS of /tr/ (no CORS there)', method: 'OPTIONS', path: '/tr/', headers: { host: 'tags.example.com', origin: 'https://www.example.com' }, answer: { status: 204, allow: 'GET, HEAD, POST, OPTIONS' } },
  { name: 'an upper-case GA4 path with a trailing slash', method: 'GET', path: `/G/Collect/?${ga4}&en=x`, headers: { host: 'tags.example.com' }, answer: { status: 204 } },
  { name: 'a pixel image request on an upper-case /TR', method: 'GET', path: `/TR?${pixel}`, headers: { host: 'tags.example.com' }, answer: { status: 200, gif: true } },
  { name: 'two trailing slashes (no route, as for Express)', method: 'POST', path: '/v1/track//', headers: json, body: JSON.stringify(event), answer: { status: 404, json: { error: { code: 'TW_ERR_NOT_FOUND', message: 'no route for POST /v1/track//' } } } },
  { name: 'an encoded letter in the path (no route, as for Express)', method: 'POST', path: '/v1/%74rack', headers: json, body: JSON.stringify(event), answer: { status: 404, json: { error: { code: 'TW_ERR_NOT_FOUND', message: 'no route for POST /v1/%74rack' } } } },
  { name: 'a traversing path to a hit route', method: 'GET', path: `/x/../tr?${pixel}`, headers: { host: 'tags.example.com' }, answer: { status: 400, json: { error: { code: 'TW_ERR_VALIDATION', message: 'request path must not contain traversal or encoded separators' } } } },
];

const CORS = { 'access-control-allow-origin': 'https://www.example.com', 'access-control-allow-credentials': 'true', vary: 'Origin' };
const NO_CORS = { 'access-control-allow-origin': undefined, 'access-control-allow-credentials': undefined, vary: undefined };

/** The requests above that hand on events, and how many each. */
const EVENTS_PER_REQUEST: Array<[string, number]> = [
  ['a valid track', 1],
  ['a valid page on a short route, as text/plain (sendBeacon)', 1],
  ['an anonymous analytics-next track (userId null)', 1],
  ['an analytics.js classic page (name and category null)', 1],
  ['a batch with userId null', 2],
  ['a query string', 1],
  ['a batch', 2],
  ['a batch with an invalid event (partial report)', 1],
  ['an origin not allowed (no CORS headers)', 1],
  ['a trailing slash', 1],
  ['an upper-case path', 1],
  ['a GA4 GET hit', 1],
  ['a GA4 POST with three hits (one invalid)', 2],
  ['a GA4 HEAD', 1],
  ['a pixel image request', 1],
  ['a pixel image request on /tr/', 1],
  ['a pixel POST form', 1],
  ['a pixel POST multipart (sendBeacon FormData)', 1],
  ['an upper-case GA4 path with a trailing slash', 1],
  ['a pixel image request on an upper-case /TR', 1],
];
/** Those events, in order: type and name. */
const EVENTS: unknown[] = [
  ['track', 'Signed Up'],
  ['page', 'Home'],
  ['track', 'Signed Up'],
  ['page', undefined],
  ['track', 'Signed Up'],
  ['identify', undefined],
  ['track', 'Signed Up'],
  ['track', 'Signed Up'],
  ['page', 'Home'],
  ['track', 'Signed Up'],
  ['track', 'Signed Up'],
  ['track', 'Signed Up'],
  ['track', 'Signed Up'],
  ['page', undefined],
  ['track', 'a'],
  ['track', 'purchase'],
  ['track', 'x'],
  ['page', undefined],
  ['page', undefined],
  ['track', 'Purchase'],
  ['track', 'AddToCart'],
  ['track', 'x'],
  ['page', undefined],
];

describe('the hit routes of Segment, GA4 and the pixel', () => {
  const templates = loadTemplates();
  const config = testConfig({
    server: { allowedHosts: ['tags.example.com'], allowedOrigins: ['https://www.example.com'], maxEventBytes: 2048, maxBatchBytes: 4096, maxBatchEvents: 3 },
    site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
    destinations: [],
  });
  let app: TagwardenApp;
  let served: { server: Server; port: number };

  beforeAll(async () => {
    app = createApp(config, { logger: pino({ level: 'silent' }), templates });
    served = await listen(app.handler, config.server);
  });
  afterAll(async () => {
    await app.shutdown(1000);
    await closeServer(served.server);
  });

  it.each(requests.map((r) => [r.name, r] as const))('%s', async (_name, r) => {
    const got = await send(served.port, r.method, r.path, r.headers, r.body);
    const want = r.answer;
    expect(got.status).toBe(want.status);
    expect(got.headers).toMatchObject(want.cors === true ? CORS : NO_CORS);
    expect(got.headers.allow).toBe(want.allow);
    // Every answer, the guard's refusals included, names its request (src/observability/request-id.ts).
    expect(got.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    if (want.json !== undefined) {
      expect(got.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = JSON.parse(got.body) as { error?: { requestId?: string } };
      // Express's error answers carry it in the body too (docs/errors.md).
      if (body.error?.requestId !== undefined) {
        expect(body.error.requestId).toBe(got.headers['x-request-id']);
        delete body.error.requestId;
      }
      expect(body).toEqual(want.json);
    } else if (want.gif === true) {
      expect(got.headers['content-type']).toBe('image/gif');
      expect(got.body.startsWith('GIF89a')).toBe(true);
    } else {
      expect(got.body).toBe('');
    }
    // Refusals of the hit routes and the guard are never cached (404 is Express's).
    if (want.status >= 400 && want.status !== 404) expect(got.headers['cache-control']).toBe('no-store');
  });

  it('closes a kept-alive connection after a 413, and keeps it after an accepted hit', async () => {
    const exchange = (text: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(served.port, '127.0.0.1', () => socket.write(text));
        let out = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          out += d;
          // An answer kept alive leaves the socket open: stop once its head and body are in.
          if (/\r\n\r\n\{"success":true\}$/.test(out)) socket.destroy();
        });
        socket.on('close', () => resolve(out));
        socket.on('error', reject);
      });
    const hit = JSON.stringify(event);
    const ok = await exchange(`POST /v1/track HTTP/1.1\r\nHost: tags.example.com\r\nContent-Type: application/json\r\nContent-Length: ${hit.length}\r\n\r\n${hit}`);
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
    expect(ok.toLowerCase()).toContain('connection: keep-alive');
    const big = await exchange('POST /v1/track HTTP/1.1\r\nHost: tags.example.com\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":');
    expect(big).toMatch(/^HTTP\/1\.1 413 /);
    expect(big.toLowerCase()).toContain('connection: close');
  });

  it('hands on the events of every accepted hit, with the client address through the trusted proxy', async () => {
    const accepted: Event[] = [];
    const hit = { trustProxyHops: 1, metrics: createMetrics(), accept: (e: Event) => accepted.push(e) };
    const listener = guarded(
      ['tags.example.com'],
      routesListener(
        new Map([
          ...segmentRoutes({ ...hit, maxEventBytes: 2048, maxBatchBytes: 4096, maxBatchEvents: 3, allowedOrigins: ['*'] }),
          ...ga4Routes({ ...hit, maxBytes: 4096 }),
          ...metaPixelRoutes({ ...hit, maxBytes: 2048 }),
        ]),
      ),
    );
    const { server, port } = await listen(listener, config.server);
    const perRequest: Array<[string, number]> = [];
    try {
      for (const r of requests) {
        const before = accepted.length;
        await send(port, r.method, r.path, { ...r.headers, 'x-forwarded-for': '198.51.100.7' }, r.body);
        perRequest.push([r.name, accepted.length - before]);
      }
    } finally {
      await closeServer(server);
    }
    expect(accepted.every((e) => e.context.ip === '198.51.100.7')).toBe(true);
    expect(perRequest.filter(([, n]) => n > 0)).toEqual(EVENTS_PER_REQUEST);
    expect(accepted.map((e) => [e.type, e.event ?? e.name])).toEqual(EVENTS);
  });

  it('during shutdown hits are refused with 503, never acknowledged; a preflight is still answered', async () => {
    const own = createApp(config, { logger: pino({ level: 'silent' }), templates });
    const srv = createServer(own.handler);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    await own.shutdown(100);
    const port = (srv.address() as AddressInfo).port;
    const r = await send(port, 'POST', '/v1/track', json, JSON.stringify(event));
    const g = await send(port, 'GET', `/g/collect?${ga4}&en=x`, { host: 'tags.example.com' });
    const p = await send(port, 'GET', `/tr?${pixel}`, { host: 'tags.example.com' });
    const invalid = await send(port, 'GET', '/tr?id=1234567890', { host: 'tags.example.com' });
    const preflight = await send(port, 'OPTIONS', '/v1/track', { ...json, 'access-control-request-method': 'POST' });
    await closeServer(srv);
    for (const answer of [r, g, p, invalid]) {
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'TW_ERR_UNAVAILABLE' } });
    }
    expect(r.headers).toMatchObject(CORS);
    expect(preflight.status).toBe(204);
  });
});
