import { afterEach, describe, expect, it, vi } from 'vitest';
import { CONSENT, NO_CONSENT, startFakeVerifyServer, type FakeVerifyServer } from './fixtures/upstream/fake-verify-server.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { post, startTagwarden, startVendor, testConfig, upstreamVerify } from './helpers.ts';

/**
 * Consent resolution through the upstream verify API, end to end: hits that carry no consent
 * wait while the upstream is asked (once per visitor), and are decided by its answer; an error,
 * a 429, a timeout or "no consent found" never lets anything through.
 */
describe('end to end: consent from the upstream verify API', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup(respond: FakeVerifyServer['respond'], verify: Record<string, unknown> = {}, hold: Record<string, unknown> = {}, consentClock?: FakeClock) {
    const upstream = await startFakeVerifyServer(respond);
    const vendor = await startVendor();
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { saleOrShare: true }, analytics: {} } },
        identity: { visitorId: [{ cookie: 'cb_vid' }, { body: 'anonymousId' }] },
        hold,
        upstream: {
          verify: upstreamVerify(upstream.url, { timeoutMs: 300, ...verify }),
        },
        destinations: [
          { id: 'ads', template: 'webhook', settings: { url: `${vendor.url}/ads` }, consent: { categories: ['advertising'] } },
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } },
        ],
      }),
      undefined,
      consentClock === undefined ? {} : { consentClock },
    );
    cleanup.push(() => upstream.close(), vendor.close, tw.close);
    const delivered = (path: string): string[] =>
      vendor.hits.filter((h) => h.path === path).flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId)).sort();
    const send = async (messageId: string, visitor: string, extra: { headers?: Record<string, string>; context?: Record<string, unknown> } = {}) => {
      const r = await post(`${tw.url}/v1/track`, { messageId, event: 'Order Completed', anonymousId: visitor, timestamp: new Date().toISOString(), context: extra.context ?? {} }, extra.headers);
      expect(r.status).toBe(200);
    };
    const unresolved = async (): Promise<number> => {
      const text = await (await fetch(`${tw.url}/metrics`)).text();
      return [...text.matchAll(/tagwarden_decisions_total\{[^}]*outcome="drop",reason="consent_unresolved"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    };
    return { upstream, vendor, tw, delivered, send, unresolved };
  }

  it('1,000 concurrent hits of one cold visitor make one upstream call, and its answer decides them all', async () => {
    const s = await setup(() => ({ status: 200, body: CONSENT, delayMs: 50 }));
    await Promise.all(Array.from({ length: 1000 }, (_, i) => s.send(`m${i}`, 'visitor-1')));
    await s.tw.app.flush(5000);
    expect(s.upstream.hits).toHaveLength(1);
    expect(s.upstream.hits[0]).toMatchObject({ siteId: 'shop', visitorId: 'visitor-1', apiKey: 'upstream-key' });
    // CONSENT grants analytics and denies marketing.
    expect(s.delivered('/stats')).toHaveLength(1000);
    expect(s.delivered('/ads')).toEqual([]);
    // A later hit of the same visitor is answered from the cache.
    await s.send('later', 'visitor-1');
    await s.tw.app.flush(5000);
    expect(s.upstream.hits).toHaveLength(1);
    expect(s.delivered('/stats')).toContain('later');
  });

  it('a hit that carries its consent does not ask the upstream', async () => {
    const s = await setup(() => ({ status: 200, body: CONSENT }));
    await s.send('own', 'visitor-2', { context: { consent: { categoryPreferences: { advertising: true, analytics: true } } } });
    await s.tw.app.flush(5000);
    expect(s.upstream.hits).toHaveLength(0);
    expect(s.delivered('/ads')).toEqual(['own']);
  });

  it('the CMP cookie names the visitor when configured first', async () => {
    const s = await setup(() => ({ status: 200, body: CONSENT }));
    await s.send('cookie', 'anon-x', { headers: { cookie: 'cb_vid=cmp-visitor-9' } });
    await s.tw.app.flush(5000);
    expect(s.upstream.hits.map((h) => h.visitorId)).toEqual(['cmp-visitor-9']);
  });

  it('"no consent found" leaves the categories unknown: nothing is sent (opt-in, whenUnknown drop)', async () => {
    const s = await setup(() => ({ status: 200, body: NO_CONSENT }));
    await s.send('n1', 'visitor-3');
    await s.tw.app.flush(5000);
    expect(s.delivered('/stats')).toEqual([]);
    expect(s.delivered('/ads')).toEqual([]);
  });

  it('GPC wins over an upstream grant', async () => {
    const s = await setup(() => ({ status: 200, body: { ...CONSENT, categories: { marketing: true, analytics: true } } }));
    await s.send('g1', 'visitor-4', { headers: { 'sec-gpc': '1' } });
    await s.tw.app.flush(5000);
    expect(s.delivered('/ads')).toEqual([]);
    expect(s.delivered('/stats')).toEqual(['g1']);
  });

  it.each([
    ['a 429 with Retry-After in seconds', () => ({ status: 429, headers: { 'retry-after': '120' } })],
    ['a 429 with Retry-After as an HTTP-date', () => ({ status: 429, headers: { 'retry-after': new Date(Date.now() + 120_000).toUTCString() } })],
    ['a 503', () => ({ status: 503, headers: { 'retry-after': '120' } })],
    ['a 500', () => ({ status: 500 })],
    ['a connection reset', () => ({ reset: true as const })],
    ['a malformed body', () => ({ status: 200, body: { hasConsent: 'yes', categories: { analytics: true } } })],
  ])('%s: nothing is forwarded, the events are dropped as consent_unresolved', async (_name, respond) => {
    const s = await setup(respond);
    await Promise.all(Array.from({ length: 10 }, (_, i) => s.send(`f${i}`, 'visitor-5')));
    await s.tw.app.flush(5000);
    expect(s.delivered('/stats')).toEqual([]);
    expect(s.delivered('/ads')).toEqual([]);
    expect(await s.unresolved()).toBe(20);
  });

  it('a timeout: nothing is forwarded, the events are dropped as consent_unresolved', async () => {
    // The lookup's timer runs on the consent clock: the answer never comes, the clock passes the 300 ms.
    const clock = new FakeClock(Date.now());
    const s = await setup(() => ({ hang: true }), {}, {}, clock);
    await Promise.all(Array.from({ length: 10 }, (_, i) => s.send(`t${i}`, 'visitor-t')));
    await vi.waitFor(() => expect(s.upstream.hits).toHaveLength(1));
    clock.advance(299);
    clock.advance(1);
    await s.tw.app.flush(5000);
    expect(s.delivered('/stats')).toEqual([]);
    expect(s.delivered('/ads')).toEqual([]);
    expect(await s.unresolved()).toBe(20);
  });

  it('inside a Retry-After window no call at all reaches the upstream', async () => {
    const s = await setup(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    await s.send('first', 'visitor-6');
    await s.tw.app.flush(5000);
    expect(s.upstream.hits).toHaveLength(1);
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.send(`w${i}`, `other-${i}`)));
    await s.tw.app.flush(5000);
    expect(s.upstream.hits).toHaveLength(1);
    expect(s.delivered('/stats')).toEqual([]);
    // The one request the upstream answered 429 is counted as such; the lookups refused locally
    // while its Retry-After runs are lookups (upstream_rate_limited), not calls.
    const text = await (await fetch(`${s.tw.url}/metrics`)).text();
    expect(text).toContain('tagwarden_upstream_verify_calls_total{outcome="http_429"} 1\n');
    expect(Number(/tagwarden_consent_lookups_total\{result="upstream_rate_limited"\} (\d+)/.exec(text)?.[1])).toBeGreaterThan(1);
  });

  it('the pending queue is bounded: what does not fit is dropped as consent_unresolved, the rest decided by the answer', async () => {
    let answer = (): void => undefined;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    // The answer waits until every hit has arrived, so all eight wait for it.
    const s = await setup(() => ({ status: 200, body: CONSENT, after: answered }), {}, { maxEvents: 5 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => s.send(`q${i}`, 'visitor-7')));
    answer();
    await s.tw.app.flush(5000);
    // Each waiting event holds one entry for its two undecided destinations.
    expect(s.delivered('/stats')).toHaveLength(5);
    expect(await s.unresolved()).toBe(6);
  });

  it('an event waiting longer than hold.maxAgeMs is dropped, not sent when the answer comes late', async () => {
    // Consent time is a hand-driven clock: the hold runs out while the upstream is being asked
    // (the clock moves as the request arrives), and the answer comes after that. No sleep.
    const clock = new FakeClock(Date.now());
    const s = await setup(
      () => {
        clock.advance(201);
        return { status: 200, body: CONSENT };
      },
      { timeoutMs: 3000 },
      { maxAgeMs: 200 },
      clock,
    );
    await s.send('slow', 'visitor-8');
    await s.tw.app.flush(5000);
    expect(s.upstream.hits).toHaveLength(1);
    expect(s.delivered('/stats')).toEqual([]);
    expect(await s.unresolved()).toBe(2);
  });
});
