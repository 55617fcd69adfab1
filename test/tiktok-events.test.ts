import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { post, sha256, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';

/**
 * The tiktok-events template end to end (templates/tiktok-events/README.md): Segment hits in through
 * /v1/track of a running Tagwarden, out to a fake TikTok Events API on 127.0.0.1 at the template's
 * own path, compared whole. Consent in opt-in mode: granted sends everything, denied sends nothing,
 * unknown with whenUnknown: redact sends the consent_unknown redaction. A failed request is
 * retried with the same event_id (TikTok deduplicates on it), and the access token is never logged.
 */

const TOKEN = 'tt-secret-access-token-0123456789';
const PIXEL = 'COQDA8RC77U2TMR44LI0';
const PATH = '/open_api/v1.3/event/track/';
/** TikTok's answer to an accepted request (a 200 whose `code` is 0). */
const OK = JSON.stringify({ code: 0, message: 'OK', request_id: '2024050112000001', data: {} });

interface TikTokBody {
  event_source: string;
  event_source_id: string;
  data: Record<string, any>[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(respond: (hit: VendorHit) => { status: number; body?: string }, clock?: FakeClock) {
  const vendor = await startVendor(respond);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const tw = await startTagwarden(
    testConfig({
      site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: {} } },
      destinations: [
        {
          id: 'tiktok',
          template: 'tiktok-events',
          settings: { pixelCode: PIXEL, accessToken: TOKEN },
          endpoint: `${vendor.url}${PATH}`,
          consent: { whenUnknown: 'redact' },
        },
      ],
    }),
    pino({ level: 'debug' }, sink),
    clock === undefined ? {} : { deliveryClock: clock },
  );
  cleanups.push(() => vendor.close(), () => tw.close());
  return { vendor, tw, logs };
}

const consent = (advertising?: boolean) => (advertising === undefined ? {} : { consent: { categoryPreferences: { advertising } } });

const purchase = (messageId: string, advertising?: boolean) => ({
  type: 'track',
  event: 'Order Completed',
  messageId,
  anonymousId: `anon-${messageId}`,
  userId: 'user-42',
  timestamp: '2024-05-01T12:00:00.000Z',
  context: {
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (test)',
    page: { url: 'https://shop.example/thanks?ttclid=E.C.P.click-1', referrer: 'https://shop.example/cart' },
    // The site reads TikTok's _ttp cookie in the browser and passes it (README, "Browser ids").
    ttp: '2F7h37YkS1j57AYSKTI7IHhJPYH',
    traits: { email: ' Ann@Example.com', phone: '+1 (213) 373-4253' },
    ...consent(advertising),
  },
  properties: { order_id: 'T-1', value: 25, currency: 'eur', products: [{ product_id: 'p1', quantity: 1, price: 25 }] },
});

const expectedItem = (messageId: string) => ({
  event: 'CompletePayment',
  event_time: 1714564800,
  event_id: messageId,
  user: {
    ttclid: 'E.C.P.click-1',
    ttp: '2F7h37YkS1j57AYSKTI7IHhJPYH',
    email: sha256('ann@example.com'),
    phone: sha256('+12133734253'),
    external_id: sha256('user-42'),
    ip: '203.0.113.7',
    user_agent: 'Mozilla/5.0 (test)',
  },
  page: { url: 'https://shop.example/thanks?ttclid=E.C.P.click-1', referrer: 'https://shop.example/cart' },
  properties: { contents: [{ content_id: 'p1', quantity: 1, price: 25 }], content_type: 'product', value: 25, currency: 'EUR', order_id: 'T-1' },
});

/** Lets sockets, undici and the vendor's handler run; the fake clock does not move. */
async function settleIo(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('end to end: tiktok-events against a fake TikTok Events API', () => {
  it('granted sends the whole event, denied nothing, unknown the consent_unknown redaction; one batch, Access-Token header, token never logged', async () => {
    const { vendor, tw, logs } = await setup(() => ({ status: 200, body: OK }));
    // Within the template's 500 ms linger: one request for the events that go.
    const answers = await Promise.all([
      post(`${tw.url}/v1/track`, purchase('m-granted', true)),
      post(`${tw.url}/v1/track`, purchase('m-denied', false)),
      post(`${tw.url}/v1/track`, purchase('m-unknown')),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await tw.app.flush(5_000);

    expect(vendor.hits).toHaveLength(1);
    const hit = vendor.hits[0]!;
    expect(hit.method).toBe('POST');
    expect(hit.path).toBe(PATH);
    expect(hit.query).toEqual({});
    expect(hit.headers['access-token']).toBe(TOKEN);
    expect(hit.headers['content-type']).toBe('application/json');
    const body = hit.body as TikTokBody;
    body.data.sort((a, b) => String(a.event_id).localeCompare(String(b.event_id)));
    const unknown = expectedItem('m-unknown');
    expect(body).toEqual({
      event_source: 'web',
      event_source_id: PIXEL,
      data: [
        expectedItem('m-granted'),
        // Consent unknown: click id, _ttp and hashed identifiers gone, the IP truncated.
        { ...unknown, user: { ip: '203.0.113.0', user_agent: 'Mozilla/5.0 (test)' } },
      ],
    });

    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    expect(metrics).toContain('tagwarden_decisions_total{destination="tiktok",outcome="drop",reason="consent_denied:advertising"} 1');
    expect(metrics).toContain('tagwarden_decisions_total{destination="tiktok",outcome="redact",reason="consent_unknown:advertising"} 1');
    expect(logs.join('')).not.toContain(TOKEN);
  });

  it('a failed request is retried with the same body, so TikTok sees the same event_id; the token (echoed by the vendor) is in no log line', async () => {
    const clock = new FakeClock(Date.now());
    let calls = 0;
    const { vendor, tw, logs } = await setup(() => {
      calls += 1;
      // A gateway error that echoes the token back: it must not reach a log.
      return calls === 1 ? { status: 503, body: JSON.stringify({ code: 50000, message: `upstream busy for ${TOKEN}` }) } : { status: 200, body: OK };
    }, clock);
    expect((await post(`${tw.url}/v1/track`, purchase('m-retry', true))).status).toBe(200);

    const flushing = tw.app.flush(60_000);
    // The backoff runs on the fake clock: move it until the retry has gone out (bounded).
    for (let i = 0; i < 600 && vendor.hits.length < 2; i++) {
      await settleIo();
      clock.advance(100);
    }
    await flushing;

    expect(vendor.hits).toHaveLength(2);
    const [first, second] = vendor.hits.map((h) => h.body as TikTokBody);
    expect(first!.data.map((e) => e.event_id)).toEqual(['m-retry']);
    expect(second).toEqual(first);
    expect(second!.data[0]).toEqual(expectedItem('m-retry'));

    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    expect(metrics).toContain('tagwarden_deliveries_total{destination="tiktok",outcome="delivered"} 1');
    expect(metrics).toContain('tagwarden_deliveries_total{destination="tiktok",outcome="retry_scheduled"} 1');
    expect(logs.join('')).toContain('"reason":"status_503"');
    expect(logs.join('')).not.toContain(TOKEN);
  });

  it('TikTok answers 200 to errors: code 40100 (rate limit) is retried with the same event_id, code 40002 fails with TikTok\'s message, code 0 is delivered', async () => {
    const clock = new FakeClock(Date.now());
    let limited = false;
    const { vendor, tw, logs } = await setup((hit) => {
      const id = String((hit.body as TikTokBody).data[0]?.event_id);
      if (id === 'm-bad') return { status: 200, body: JSON.stringify({ code: 40002, message: 'Invalid value for event', request_id: 'r-2', data: {} }) };
      if (!limited) {
        limited = true;
        return { status: 200, body: JSON.stringify({ code: 40100, message: 'Too many requests', request_id: 'r-1', data: {} }) };
      }
      return { status: 200, body: OK };
    }, clock);
    expect((await post(`${tw.url}/v1/track`, purchase('m-limited', true))).status).toBe(200);
    const flushing = tw.app.flush(60_000);
    for (let i = 0; i < 600 && vendor.hits.length < 2; i++) {
      await settleIo();
      clock.advance(100);
    }
    await flushing;
    expect(vendor.hits).toHaveLength(2);
    const [first, second] = vendor.hits.map((h) => h.body as TikTokBody);
    expect(second).toEqual(first);
    expect(second!.data.map((e) => e.event_id)).toEqual(['m-limited']);

    expect((await post(`${tw.url}/v1/track`, purchase('m-bad', true))).status).toBe(200);
    await tw.app.flush(5_000);
    expect(vendor.hits).toHaveLength(3);

    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    expect(metrics).toContain('tagwarden_deliveries_total{destination="tiktok",outcome="delivered"} 1');
    expect(metrics).toContain('tagwarden_deliveries_total{destination="tiktok",outcome="retry_scheduled"} 1');
    expect(metrics).toContain('tagwarden_deliveries_total{destination="tiktok",outcome="failed"} 1');
    const text = logs.join('');
    expect(text).toContain('"reason":"status_200_transient"');
    expect(text).toContain('"reason":"status_200_rejected"');
    expect(text).toContain('Invalid value for event');
    expect(text).not.toContain(TOKEN);
  });
});
