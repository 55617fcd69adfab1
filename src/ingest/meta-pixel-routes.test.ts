import { loadJsonFixtures } from '../../test/fixtures/load.ts';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import type { HitSources } from '../identity/visitor.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { routesListener } from '../../test/hit-routes-listener.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { Event } from './event.ts';
import { metaPixelRoutes, PIXEL_GIF } from './meta-pixel-routes.ts';
import { LIMITS } from './meta-pixel.ts';

const now = new Date('2026-03-01T12:00:00.000Z');
const UA = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0';
const GIF_HEX = '47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b';

interface PixelFixture {
  request: { method: 'GET' | 'POST'; path?: string; query: string; contentType?: string; body?: string };
  event: Record<string, unknown>;
}
const fixtures = loadJsonFixtures<PixelFixture>('meta-pixel');

function setup(maxBytes = 4096) {
  const metrics = createMetrics({ defaultMetrics: false });
  const accepted: { event: Event; hit: HitSources }[] = [];
  const app = routesListener(metaPixelRoutes({ maxBytes, metrics, trustProxyHops: 1, accept: (event, hit) => accepted.push({ event, hit }), clock: new FakeClock(now.getTime()) }));
  const rejected = async (): Promise<number> => {
    const m = await metrics.eventsRejected.get();
    return m.values.filter((v) => v.labels.client === 'meta-pixel').reduce((a, v) => a + v.value, 0);
  };
  return { app, accepted, metrics, rejected };
}

const binary = (res: request.Response, cb: (err: Error | null, body: Buffer) => void): void => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
};

describe('metaPixelRoutes', () => {
  it('answers GET with the 43-byte transparent GIF and no-store headers', async () => {
    const { app, accepted } = setup();
    const res = await request(app).get('/tr?id=1&ev=PageView').buffer(true).parse(binary);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/gif');
    expect(res.headers['content-length']).toBe('43');
    expect(res.headers['cache-control']).toMatch(/no-store/);
    expect(PIXEL_GIF.length).toBe(43);
    expect((res.body as Buffer).toString('hex')).toBe(GIF_HEX);
    expect(accepted).toHaveLength(1);
  });

  it('answers POST with 204, form-encoded or text/plain, and on /tr/', async () => {
    const { app, accepted } = setup();
    const a = await request(app).post('/tr').type('form').send('id=1&ev=Lead');
    const b = await request(app).post('/tr/').set('content-type', 'text/plain;charset=UTF-8').send('id=1&ev=Lead&eid=e1');
    expect([a.status, b.status]).toEqual([204, 204]);
    expect(accepted.map((x) => x.event.event)).toEqual(['Lead', 'Lead']);
    expect(accepted[1]?.event.messageId).toBe('e1');
  });

  it.each(fixtures)('replays %s to its golden event and hands on the hit sources', async (_name, fx) => {
    const { app, accepted, metrics } = setup(32_768);
    const base = fx.request.path ?? '/tr';
    const path = fx.request.query === '' ? base : `${base}?${fx.request.query}`;
    const contentType = fx.request.contentType ?? 'application/x-www-form-urlencoded';
    const req = fx.request.method === 'GET' ? request(app).get(path) : request(app).post(path).set('content-type', contentType).send(fx.request.body ?? '');
    const res = await req.set('x-forwarded-for', '203.0.113.9').set('user-agent', UA);
    expect(res.status).toBe(fx.request.method === 'GET' ? 200 : 204);
    expect(accepted).toHaveLength(1);
    const { event, hit } = accepted[0]!;
    const { messageId, ...rest } = event;
    const { messageId: expectedId, ...expected } = fx.event;
    if (expectedId !== undefined) expect(messageId).toBe(expectedId);
    expect(rest).toStrictEqual(expected);
    expect(hit.query.get('id')).toBe('1234567890123456');
    expect(hit.body).toMatchObject({ id: '1234567890123456', ev: event.event ?? 'PageView' });
    if (event.anonymousId !== undefined) expect((hit.body as { anonymousId?: string }).anonymousId).toBe(event.anonymousId);
    const received = await metrics.eventsReceived.get();
    expect(received.values).toEqual([expect.objectContaining({ labels: { client: 'meta-pixel', type: event.type }, value: 1 })]);
  });

  it('still answers invalid hits (no id, no ev, oversized query, unread body types) and counts them', async () => {
    const { app, accepted, rejected } = setup();
    expect((await request(app).get('/tr?ev=PageView')).status).toBe(200);
    expect((await request(app).get('/tr')).status).toBe(200);
    expect((await request(app).get(`/tr?id=1&ev=X&dl=${'a'.repeat(LIMITS.query)}`)).status).toBe(200);
    expect((await request(app).post('/tr').type('form').send('id=1')).status).toBe(204);
    expect((await request(app).post('/tr').set('content-type', 'application/json').send('{"id":"1","ev":"X"}')).status).toBe(204);
    expect((await request(app).post('/tr').type('form').set('content-encoding', 'gzip').send('id=1&ev=X')).status).toBe(204);
    expect(accepted).toHaveLength(0);
    expect(await rejected()).toBe(6);
  });

  it('answers 413 JSON to a body over maxBytes, declared or streamed', async () => {
    const { app, accepted, rejected } = setup(64);
    const big = `id=1&ev=X&cd[x]=${'a'.repeat(100)}`;
    const res = await request(app).post('/tr').type('form').send(big);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 64 bytes', details: { limit: 64 } } });
    const chunked = request(app).post('/tr').type('form');
    chunked.write(big.slice(0, 50));
    chunked.write(big.slice(50));
    expect((await chunked).status).toBe(413);
    expect(accepted).toHaveLength(0);
    expect(await rejected()).toBe(2);
  });

  it('pixel multipart POST is parsed, not dropped', async () => {
    // fbevents.js's navigator.sendBeacon(FormData) (rqm=SB): before, this answered 204 and the
    // event vanished, counted only as rejected{code="TW_ERR_VALIDATION"}.
    const { app, accepted, rejected } = setup();
    const form = new FormData();
    for (const [k, v] of [['id', '1234567890'], ['ev', 'AddToCart'], ['eid', 'atc-1'], ['cd[value]', '12.5'], ['cd[currency]', 'EUR'], ['rqm', 'SB']]) form.append(k!, v!);
    const encoded = new Response(form);
    const res = await request(app).post('/tr/').set('content-type', encoded.headers.get('content-type')!).send(Buffer.from(await encoded.arrayBuffer()));
    expect(res.status).toBe(204);
    expect(accepted.map((a) => [a.event.messageId, a.event.event, a.event.properties])).toEqual([['atc-1', 'AddToCart', { value: 12.5, currency: 'EUR' }]]);
    expect(await rejected()).toBe(0);
  });

  it('counts an unreadable multipart body (no boundary, cut, a file part) by its code and answers 204', async () => {
    const { app, accepted, metrics } = setup();
    const form = new FormData();
    form.append('id', '1');
    form.append('ev', 'Lead');
    const encoded = new Response(form);
    const ctype = encoded.headers.get('content-type')!;
    const body = Buffer.from(await encoded.arrayBuffer());
    const withFile = new FormData();
    withFile.append('id', '1');
    withFile.append('ev', 'Lead');
    withFile.append('f', new Blob(['x']), 'x.bin');
    const fileEncoded = new Response(withFile);
    const answers = [
      await request(app).post('/tr').set('content-type', 'multipart/form-data').send(body),
      await request(app).post('/tr').set('content-type', ctype).send(body.subarray(0, body.length - 10)),
      await request(app).post('/tr').set('content-type', fileEncoded.headers.get('content-type')!).send(Buffer.from(await fileEncoded.arrayBuffer())),
    ];
    expect(answers.map((a) => a.status)).toEqual([204, 204, 204]);
    expect(accepted).toHaveLength(0);
    const counted = (await metrics.eventsRejected.get()).values.map((v) => [v.labels.code, v.value]);
    expect(counted).toEqual([['TW_ERR_MALFORMED_BODY', 3]]);
  });

  it('answers 413 JSON to a multipart body over maxBytes, declared or streamed', async () => {
    const { app, accepted, rejected } = setup(256);
    const form = new FormData();
    form.append('id', '1');
    form.append('ev', 'X');
    form.append('cd[pad]', 'a'.repeat(300));
    const encoded = new Response(form);
    const ctype = encoded.headers.get('content-type')!;
    const body = Buffer.from(await encoded.arrayBuffer());
    const declared = await request(app).post('/tr').set('content-type', ctype).send(body);
    expect(declared.status).toBe(413);
    expect(declared.body).toEqual({ error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE', message: 'the body is larger than 256 bytes', details: { limit: 256 } } });
    const chunked = request(app).post('/tr').set('content-type', ctype);
    chunked.write(body.subarray(0, 200));
    chunked.write(body.subarray(200));
    expect((await chunked).status).toBe(413);
    expect(accepted).toHaveLength(0);
    expect(await rejected()).toBe(2);
  });

  it('a multipart body whose connection closes before its end is counted, never left hanging', async () => {
    const { app, accepted, metrics } = setup();
    const server = createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const form = new FormData();
      form.append('id', '1');
      form.append('ev', 'Lead');
      const encoded = new Response(form);
      const body = Buffer.from(await encoded.arrayBuffer());
      let arrived = false;
      server.on('request', () => (arrived = true));
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/tr', headers: { 'content-type': encoded.headers.get('content-type')!, 'content-length': body.length } });
      req.on('error', () => undefined);
      req.write(body.subarray(0, 40));
      await vi.waitFor(() => expect(arrived).toBe(true));
      req.destroy();
      await vi.waitFor(async () => {
        const counted = (await metrics.eventsRejected.get()).values.map((v) => [v.labels.code, v.value]);
        expect(counted).toEqual([['TW_ERR_MALFORMED_BODY', 1]]);
      });
      expect(accepted).toHaveLength(0);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
