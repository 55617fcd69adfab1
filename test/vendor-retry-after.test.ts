import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { post, startTagwarden, startVendor, testConfig, type VendorHit } from './helpers.ts';

/**
 * Regression: GA4 (a POST without an idempotency key) lost every event behind one
 * `429 Retry-After: 5` (2,000 of 2,000, given up as not_idempotent), and the other batches of the
 * destination went out inside the window the 429 had asked for (103 of 105). Here a real fake
 * vendor on 127.0.0.1 answers GA4's first request 429 with Retry-After and everything after 200;
 * delivery runs on a hand-driven clock, so the 5 s take no wall time.
 */

interface Recorded {
  hit: VendorHit;
  /** Fake time at which the vendor read the request. */
  at: number;
  status: number;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Lets sockets, undici and the vendor's handler run; the fake clock does not move. */
async function settleIo(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setup(refusedPath: string, destinations: (vendorUrl: string) => Record<string, unknown>[]) {
  const clock = new FakeClock(Date.now());
  const recorded: Recorded[] = [];
  let refused = false;
  const vendor = await startVendor((hit) => {
    const status = hit.path === refusedPath && !refused ? 429 : 200;
    if (status === 429) refused = true;
    recorded.push({ hit, at: clock.now(), status });
    return status === 429 ? { status, headers: { 'retry-after': '5' }, body: '' } : { status, body: '{}' };
  });
  const tw = await startTagwarden(
    testConfig({ site: { id: 'shop', dataControlMode: 'disabled', categories: { analytics: {} } }, destinations: destinations(vendor.url) }),
    undefined,
    { deliveryClock: clock },
  );
  cleanups.push(() => vendor.close(), () => tw.close());
  return { clock, recorded, tw, t0: clock.now() };
}

describe('end to end: a vendor 429 with Retry-After', () => {
  it('GA4 (Measurement Protocol, no idempotency key): the refused batch is retried, no request inside the window, every event delivered once; the webhook is not paused', async () => {
    const { clock, recorded, tw, t0 } = await setup('/ga4/mp/collect', (url) => [
      // One request at a time, so exactly one GA4 request is on the wire when the 429 comes back.
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-TEST123', apiSecret: 'ga4-secret' }, endpoint: `${url}/ga4/mp/collect`, maxInFlight: 1 },
      { id: 'crm', template: 'webhook', settings: { url: `${url}/crm` } },
    ]);
    const visitors = Array.from({ length: 12 }, (_, i) => `v${i}`);
    const batch = visitors.flatMap((v) =>
      [1, 2].map((n) => ({ type: 'track', event: 'Order Completed', messageId: `${v}-${n}`, anonymousId: v, properties: { order_id: `${v}-${n}`, value: 10, currency: 'EUR' } })),
    );
    expect((await post(`${tw.url}/v1/batch`, { batch })).status).toBe(200);

    const flushing = tw.app.flush(60_000);
    const ga4 = () => recorded.filter((r) => r.hit.path === '/ga4/mp/collect');
    await waitFor(() => ga4().length === 1 && recorded.some((r) => r.hit.path === '/crm'));
    await settleIo();
    expect(ga4().map((r) => r.status)).toEqual([429]);

    // Inside the window: the webhook went out, GA4 did not, however the clock moves.
    for (const step of [1_000, 2_000, 1_999]) {
      clock.advance(step);
      await settleIo();
      expect(ga4()).toHaveLength(1);
    }
    expect(recorded.filter((r) => r.hit.path === '/crm').every((r) => r.at === t0)).toBe(true);

    clock.advance(1);
    await flushing;
    // One request per visitor (GA4 takes one client per request): the 11 that waited and the refused one again.
    const after = ga4().slice(1);
    expect(after).toHaveLength(visitors.length);
    expect(after.every((r) => r.at >= t0 + 5_000 && r.status === 200)).toBe(true);
    const delivered = after.flatMap((r) => (r.hit.body as { events: { params: { transaction_id: string } }[] }).events.map((e) => e.params.transaction_id));
    expect(delivered.sort()).toEqual(batch.map((e) => e.properties.order_id).sort());

    const metrics = await (await fetch(`${tw.url}/metrics`)).text();
    expect(metrics).toContain('tagwarden_deliveries_total{destination="ga4",outcome="delivered"} 24');
    expect(metrics).toContain('tagwarden_deliveries_total{destination="ga4",outcome="retry_scheduled"} 2');
    expect(metrics).not.toContain('outcome="failed"');
  });

  it('GA4 hits forwarded to /g/collect: the refused hits are delivered after the window, not dropped', async () => {
    const { clock, recorded, tw, t0 } = await setup('/g/collect', (url) => [
      { id: 'ga4-hits', template: 'ga4-collect', settings: { measurementId: 'G-TEST123' }, endpoint: `${url}/g/collect`, maxInFlight: 1 },
    ]);
    const hit = (cid: string) => `v=2&tid=G-TEST123&cid=${cid}&_p=1700000000&en=page_view&dl=${encodeURIComponent('https://shop.example/')}`;
    for (const cid of ['111.1', '222.2', '333.3']) expect((await fetch(`${tw.url}/g/collect?${hit(cid)}`, { method: 'POST' })).status).toBe(204);

    const flushing = tw.app.flush(60_000);
    await waitFor(() => recorded.length === 1);
    await settleIo();
    clock.advance(4_999);
    await settleIo();
    expect(recorded.map((r) => r.status)).toEqual([429]);
    clock.advance(1);
    await flushing;

    const accepted = recorded.filter((r) => r.status === 200);
    expect(accepted.map((r) => r.hit.query.cid).sort()).toEqual(['111.1', '222.2', '333.3']);
    expect(accepted.every((r) => r.at >= t0 + 5_000)).toBe(true);
  });
});
