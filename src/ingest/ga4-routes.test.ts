import { loadJsonFixtures } from '../../test/fixtures/load.ts';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { routesListener } from '../../test/hit-routes-listener.ts';
import type { HitSources } from '../identity/visitor.ts';
import { compileSources, visitorIdFrom } from '../identity/visitor.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { Event } from './event.ts';
import { ga4Routes } from './ga4-routes.ts';

const now = new Date('2026-03-01T12:00:00.000Z');
const BASE = 'v=2&tid=G-TEST1&cid=111.222&_p=999&_s=1';

function setup(opts: { maxBytes?: number; maxHits?: number } = {}) {
  const metrics = createMetrics({ defaultMetrics: false });
  const accepted: { event: Event; hit: HitSources }[] = [];
  const app = routesListener(
    ga4Routes({
      maxBytes: opts.maxBytes ?? 16_384,
      ...(opts.maxHits === undefined ? {} : { maxHits: opts.maxHits }),
      metrics,
      trustProxyHops: 0,
      accept: (event, hit) => accepted.push({ event, hit }),
      clock: new FakeClock(now.getTime()),
    }),
  );
  const counter = async (name: string, labels: Record<string, string>): Promise<number> => {
    const m = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
    return m.filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l)).reduce((s, v) => s + v.value, 0);
  };
  return { app, accepted, counter };
}

function stripRequestFacts(e: Omit<Event, 'messageId'> | Event): unknown {
  const { messageId: _m, ...rest } = e as Event;
  const { ip: _i, userAgent: _u, ...context } = rest.context;
  return { ...rest, context };
}

describe('ga4Routes /g/collect', () => {
  const fixtures = loadJsonFixtures<{ request: { method: 'GET' | 'POST'; query: string; contentType?: string; body?: string }; events: Event[] }>('ga4');
  it.each(fixtures)('answers 204 and accepts the golden events of %s', async (_file, fx) => {
    const { app, accepted } = setup();
    const url = `/g/collect?${fx.request.query}`;
    let req = fx.request.method === 'GET' ? request(app).get(url) : request(app).post(url);
    if (fx.request.contentType !== undefined) req = req.set('content-type', fx.request.contentType);
    const res = await (fx.request.body === undefined ? req : req.send(fx.request.body));
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(accepted.map((a) => stripRequestFacts(a.event))).toEqual(fx.events.map(stripRequestFacts));
  });

  it('hands accept the hit\'s own parameters as query and {anonymousId, ...params} as body', async () => {
    const { app, accepted } = setup();
    await request(app)
      .post(`/g/collect?${BASE}&gcs=G111&gdpr=1&gdpr_consent=CPabc`)
      .set('content-type', 'text/plain;charset=UTF-8')
      .set('user-agent', 'UA/9')
      .send('en=a&gcs=G100\nen=b')
      .expect(204);
    expect(accepted).toHaveLength(2);
    const [a, b] = accepted;
    expect(a?.hit.query.get('gcs')).toBe('G100');
    expect(b?.hit.query.get('gcs')).toBe('G111');
    expect(a?.hit.query.get('gdpr_consent')).toBe('CPabc');
    expect(a?.hit.query.get('en')).toBe('a');
    expect(a?.hit.headers['user-agent']).toBe('UA/9');
    expect(a?.hit.body).toMatchObject({ anonymousId: '111.222', en: 'a', tid: 'G-TEST1' });
    expect(visitorIdFrom(compileSources([{ body: 'anonymousId' }]), a!.hit)).toEqual({ id: '111.222', source: 'body:anonymousId' });
    expect(a?.event.context.userAgent).toBe('UA/9');
  });

  it('accepts the valid lines of a mixed body, counts the rest, still 204', async () => {
    const { app, accepted, counter } = setup();
    await request(app).post(`/g/collect?${BASE}`).send('en=ok\nv=1&en=old\nen=\n%%%\nen=page_view&dt=Home').expect(204);
    expect(accepted.map((a) => [a.event.type, a.event.event ?? a.event.name])).toEqual([
      ['track', 'ok'],
      ['page', 'Home'],
    ]);
    expect(await counter('tagwarden_events_rejected_total', { client: 'ga4' })).toBe(3);
    expect(await counter('tagwarden_events_received_total', { client: 'ga4', type: 'track' })).toBe(1);
    expect(await counter('tagwarden_events_received_total', { client: 'ga4', type: 'page' })).toBe(1);
  });

  it('answers 204 to a GET or POST without any valid hit', async () => {
    const { app, accepted, counter } = setup();
    await request(app).get('/g/collect').expect(204);
    await request(app).get('/g/collect?v=2&tid=G-1').expect(204);
    await request(app).post('/g/collect').set('content-type', 'application/octet-stream').send(Buffer.from([0xff, 0xfe, 0x00])).expect(204);
    await request(app).post(`/g/collect?${BASE}&en=x`).set('content-encoding', 'gzip').send('garbage').expect(204);
    expect(accepted).toHaveLength(0);
    expect(await counter('tagwarden_events_rejected_total', { client: 'ga4' })).toBe(4);
  });

  it('a POST with an empty body is the URL\'s hit (sendBeacon without payload)', async () => {
    const { app, accepted } = setup();
    await request(app).post(`/g/collect?${BASE}&en=x`).expect(204);
    expect(accepted.map((a) => a.event.event)).toEqual(['x']);
  });

  it('answers 413 JSON to a body over maxBytes, declared or streamed, and accepts nothing', async () => {
    const { app, accepted } = setup({ maxBytes: 100 });
    const res = await request(app).post(`/g/collect?${BASE}`).set('content-type', 'text/plain').send(`en=${'a'.repeat(200)}`);
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ error: { code: 'TW_ERR_PAYLOAD_TOO_LARGE' } });
    const chunked = request(app).post(`/g/collect?${BASE}`).set('transfer-encoding', 'chunked');
    chunked.write('en=a\n'.repeat(15));
    chunked.write('en=b\n'.repeat(15));
    expect((await chunked).status).toBe(413);
    expect(accepted).toHaveLength(0);
  });

  it('accepts at most maxHits hits per request', async () => {
    const { app, accepted, counter } = setup({ maxHits: 3 });
    await request(app).post(`/g/collect?${BASE}`).send(Array.from({ length: 5 }, (_, i) => `en=e${i}`).join('\n')).expect(204);
    expect(accepted.map((a) => a.event.event)).toEqual(['e0', 'e1', 'e2']);
    expect(await counter('tagwarden_events_rejected_total', { client: 'ga4' })).toBe(2);
  });
});
