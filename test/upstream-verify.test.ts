/**
 * The upstream verify client against a real fake verify server on 127.0.0.1 over a real undici
 * Agent: call counts, Retry-After windows (seconds and HTTP-date), 5xx, timeouts, resets and
 * malformed bodies, and that no failure is ever returned as an answer. The client's gates run on
 * a hand-driven clock (so a 30 s Retry-After takes no wall time); only the timeout test uses the
 * real clock.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent } from 'undici';
import { createVerifyClient, isVerifyFailure, type VerifyClientOptions, type VerifyResult } from '../src/consent/upstream/verify-client.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { CONSENT, NO_CONSENT, startFakeVerifyServer, type FakeVerifyServer, type VerifyAction } from './fixtures/upstream/fake-verify-server.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const CONSENT_ANSWER = {
  found: true,
  categories: { analytics: 'granted', advertising: 'denied', functional: 'granted' },
  consentedAt: '2026-03-08T12:00:00Z',
  geoCountry: 'DE',
};

async function setup(respond: FakeVerifyServer['respond'], overrides: Partial<VerifyClientOptions> = {}) {
  const server = await startFakeVerifyServer(respond);
  const agent = new Agent({ connections: 16, keepAliveTimeout: 1_000 });
  const clock = new FakeClock(Date.now());
  const client = createVerifyClient({
    baseUrl: server.url,
    siteId: 'site 42',
    apiKey: 'secret-key',
    categoryMap: { marketing: 'advertising', analytics: 'analytics', functional: 'functional' },
    requestsPerMinute: 500,
    cacheTtlMs: 300_000,
    negativeCacheTtlMs: 30_000,
    maxCacheEntries: 10_000,
    timeoutMs: 2_000,
    backoff: { baseMs: 200, maxMs: 30_000 },
    breaker: { windowMs: 60_000, minRequests: 20, errorRatio: 0.5, openMs: 30_000 },
    failureTtlMs: 0,
    dispatcher: agent,
    clock,
    random: () => 0,
    ...overrides,
  });
  cleanup.push(() => server.close(), () => agent.close(), () => client.close());
  return { server, client, clock };
}

/** Every result must be a failure or exactly the answer the server gave. */
function assertNeverFailureAsAnswer(results: VerifyResult[], allowed: unknown[]): void {
  for (const r of results) {
    if (isVerifyFailure(r)) continue;
    expect(allowed.some((a) => expect.objectContaining(a as object).asymmetricMatch(r))).toBe(true);
  }
}

const failedOf = (r: VerifyResult) => (isVerifyFailure(r) ? r.failed : 'answer');

describe('upstream verify client against a fake verify server', () => {
  it('200 with consent: documented request, mapped answer, cached', async () => {
    const { server, client } = await setup(() => ({ status: 200, body: CONSENT }));
    const a = await client.lookup('visitor/1');
    expect(a).toMatchObject(CONSENT_ANSWER);
    expect(server.hits).toHaveLength(1);
    expect(server.hits[0]).toMatchObject({ siteId: 'site 42', visitorId: 'visitor/1', apiKey: 'secret-key' });
    expect(server.hits[0]!.path).toBe('/api/v1/public/sites/site%2042/consent/verify?visitor_id=visitor%2F1');
    expect(await client.lookup('visitor/1')).toBe(a);
    expect(server.hits).toHaveLength(1);
  });

  it('the "no consent found" shape is found: false and cached for the shorter TTL', async () => {
    const { server, client, clock } = await setup(() => ({ status: 200, body: NO_CONSENT }));
    expect(await client.lookup('new')).toMatchObject({ found: false, categories: {} });
    clock.advance(29_999);
    await client.lookup('new');
    expect(server.hits).toHaveLength(1);
    clock.advance(1);
    await client.lookup('new');
    expect(server.hits).toHaveLength(2);
  });

  it('1,000 concurrent lookups from one cold visitor: exactly one upstream call, one shared answer', async () => {
    const { server, client } = await setup(() => ({ status: 200, body: CONSENT, delayMs: 50 }));
    const results = await Promise.all(Array.from({ length: 1_000 }, () => client.lookup('cold')));
    expect(server.hits).toHaveLength(1);
    expect(new Set(results).size).toBe(1);
    expect(results[0]).toMatchObject(CONSENT_ANSWER);
  });

  it.each([
    ['seconds', (_now: number) => '30', 30_000],
    ['an HTTP-date', (now: number) => new Date(Math.floor(now / 1000) * 1000 + 45_000).toUTCString(), undefined],
  ])('429 with Retry-After as %s: zero calls inside the window, then exactly one probe', async (_name, header, waitMs) => {
    let rateLimited = true;
    const ref: { clock?: FakeClock } = {};
    const { server, client, clock } = await setup(() =>
      rateLimited ? { status: 429, headers: { 'retry-after': header(ref.clock!.now()) }, body: '{"error":"rate limited"}' } : { status: 200, body: CONSENT, delayMs: 20 },
    );
    ref.clock = clock;
    const first = await client.lookup('a');
    expect(first).toMatchObject({ failed: 'rate_limited' });
    const until = (first as { retryAt: number }).retryAt;
    if (waitMs !== undefined) expect(until).toBe(clock.now() + waitMs);
    else expect(until).toBe(Math.floor(clock.now() / 1000) * 1000 + 45_000);
    expect(server.hits).toHaveLength(1);
    rateLimited = false;

    // Inside the window: many visitors, many times, not one call.
    for (const step of [0, 1_000, until - clock.now() - 1 - 1_000]) {
      clock.advance(step);
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.lookup(`w${i}`)));
      expect(results.every((r) => failedOf(r) === 'rate_limited')).toBe(true);
    }
    expect(clock.now()).toBe(until - 1);
    expect(server.hits).toHaveLength(1);

    // At expiry: exactly one probe, however many lookups arrive while it is out.
    clock.advance(1);
    const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => client.lookup(`p${i}`)));
    expect(server.hits).toHaveLength(2);
    expect(burst.filter((r) => !isVerifyFailure(r))).toHaveLength(1);
    expect(burst.filter((r) => failedOf(r) === 'rate_limited')).toHaveLength(99);
    assertNeverFailureAsAnswer(burst, [CONSENT_ANSWER]);

    // The probe got an answer: traffic flows again.
    expect(failedOf(await client.lookup('after'))).toBe('answer');
    expect(server.hits).toHaveLength(3);
  });

  it('503: http_error, backoff; 503 with Retry-After: no call before it expires', async () => {
    let mode: 'plain' | 'retry-after' | 'ok' = 'plain';
    const { server, client, clock } = await setup(() =>
      mode === 'plain' ? { status: 503 } : mode === 'retry-after' ? { status: 503, headers: { 'retry-after': '10' } } : { status: 200, body: CONSENT },
    );
    expect(await client.lookup('a')).toEqual({ failed: 'http_error', retryAt: clock.now() });
    expect(client.stats().notBefore).toBe(clock.now()); // random 0: full jitter picked 0 ms, one probe next
    mode = 'retry-after';
    expect(await client.lookup('b')).toEqual({ failed: 'http_error', retryAt: clock.now() + 10_000 });
    expect(client.stats().notBefore).toBe(clock.now() + 10_000);
    mode = 'ok';
    clock.advance(9_999);
    expect(failedOf(await client.lookup('c'))).toBe('rate_limited');
    expect(server.hits).toHaveLength(2);
    clock.advance(1);
    expect(await client.lookup('c')).toMatchObject(CONSENT_ANSWER);
    expect(server.hits).toHaveLength(3);
  });

  it('a slow answer beyond the timeout is a timeout, never an answer, and is not cached', async () => {
    const server = await startFakeVerifyServer(() => ({ status: 200, body: CONSENT, delayMs: 3_000 }));
    const agent = new Agent();
    const client = createVerifyClient({
      baseUrl: server.url,
      siteId: 's',
      apiKey: 'k',
      categoryMap: { marketing: 'advertising' },
      requestsPerMinute: 100,
      cacheTtlMs: 60_000,
      negativeCacheTtlMs: 10_000,
      maxCacheEntries: 100,
      timeoutMs: 150,
      backoff: { baseMs: 100, maxMs: 1_000 },
      breaker: { windowMs: 60_000, minRequests: 5, errorRatio: 0.5, openMs: 10_000 },
      dispatcher: agent,
    });
    cleanup.push(() => server.close(), () => agent.close(), () => client.close());
    const started = Date.now();
    const r = await client.lookup('slow');
    expect(r).toMatchObject({ failed: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.hits).toHaveLength(1);
    expect(client.cached('slow')).toBeUndefined();
    expect(client.stats().inFlight).toBe(0);
  });

  it('a connection reset is a network failure, then backoff', async () => {
    const { server, client } = await setup(() => ({ reset: true }), { random: () => 0.5 });
    expect(await client.lookup('a')).toMatchObject({ failed: 'network' });
    expect(failedOf(await client.lookup('b'))).toBe('backing_off');
    expect(server.hits).toHaveLength(1);
  });

  it('malformed and oversized bodies are failures, never consent', async () => {
    const bodies: VerifyAction[] = [
      { status: 200, body: '{"hasConsent": true, "categories": {"marketing": tru' },
      { status: 200, body: { hasConsent: 'yes', categories: { marketing: true } } },
      { status: 200, body: { hasConsent: true, categories: { marketing: true }, pad: 'x'.repeat(20_000) } },
    ];
    const { client } = await setup((_hit, i) => bodies[i]!);
    for (const v of ['a', 'b', 'c']) {
      expect(await client.lookup(v)).toEqual({ failed: 'malformed' });
      expect(client.cached(v)).toBeUndefined();
    }
  });

  it('revocation during a fetch: the older answer is not cached; one request per visitor on the wire', async () => {
    let granted = true;
    const { server, client } = await setup(() => ({
      status: 200,
      body: { ...CONSENT, categories: { marketing: granted } },
      delayMs: 80,
    }));
    const old = client.lookup('v');
    // In flight: the server has the request (its answer waits 80 ms).
    await vi.waitFor(() => expect(server.hits).toHaveLength(1), { interval: 5 });
    granted = false; // the local revocation, as the upstream will also report it from now on
    client.invalidate('v');
    const fresh = client.lookup('v');
    expect(await old).toEqual({ failed: 'superseded' });
    expect(await fresh).toMatchObject({ categories: { advertising: 'denied' } });
    expect(client.cached('v')).toMatchObject({ categories: { advertising: 'denied' } });
    expect(server.hits).toHaveLength(2);
    expect(server.maxConcurrentPerVisitor).toBe(1);
  });

  it('a mixed run of upstream behaviours never yields a failure as an answer, and no call lands inside a Retry-After', async () => {
    const script: VerifyAction[] = [
      { status: 200, body: CONSENT },
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 200, body: NO_CONSENT },
      { status: 500 },
      { reset: true },
      { status: 200, body: 'garbage' },
      { status: 503, headers: { 'retry-after': '2' } },
      { status: 404 },
      { status: 200, body: CONSENT },
    ];
    /** Client-clock time of each call. */
    const at: number[] = [];
    const ref: { clock?: FakeClock } = {};
    const { client, clock } = await setup(
      (_hit, i) => {
        at.push(ref.clock!.now());
        return script[i] ?? { status: 200, body: CONSENT };
      },
      { breaker: { windowMs: 60_000, minRequests: 100, errorRatio: 1, openMs: 1_000 } },
    );
    ref.clock = clock;
    const results: VerifyResult[] = [];
    for (let i = 0; i < 40; i++) {
      results.push(await client.lookup(`m${i % 7}`));
      clock.advance(300);
    }
    assertNeverFailureAsAnswer(results, [CONSENT_ANSWER, { found: false, categories: {} }]);
    expect(results.filter((r) => !isVerifyFailure(r)).length).toBeGreaterThan(3);
    expect(at.length).toBeGreaterThan(script.length);
    // The call after the 429 (Retry-After: 1) and after the 503 (Retry-After: 2) waited it out.
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1_000);
    expect(at[7]! - at[6]!).toBeGreaterThanOrEqual(2_000);
  });
});

describe('concurrency: a long local queue is not an upstream failure', () => {
  it('never has more than maxConcurrent requests out, and a lookup waiting for a slot does not time out', async () => {
    let open = 0;
    let maxOpen = 0;
    const { server, client } = await setup(
      () => {
        open++;
        maxOpen = Math.max(maxOpen, open);
        setTimeout(() => open--, 50);
        return { status: 200, body: CONSENT, delayMs: 50 };
      },
      // Real clock: 30 visitors through 3 slots take ~500 ms, far past the 200 ms timeout.
      { maxConcurrent: 3, timeoutMs: 200, clock: undefined },
    );
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => client.lookup(`v${i}`)));
    expect(results.map(failedOf)).toEqual(Array.from({ length: 30 }, () => 'answer'));
    expect(server.hits).toHaveLength(30);
    expect(maxOpen).toBeLessThanOrEqual(3);
  });

  it('beyond maxWaiting a lookup fails at once as overloaded, without a call', async () => {
    const { server, client } = await setup(() => ({ status: 200, body: CONSENT, delayMs: 50 }), { maxConcurrent: 1, maxWaiting: 2, clock: undefined });
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => client.lookup(`w${i}`)));
    expect(results.map(failedOf)).toEqual(['answer', 'answer', 'answer', 'overloaded', 'overloaded']);
    expect(server.hits).toHaveLength(3);
  });
});
