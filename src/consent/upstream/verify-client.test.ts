import { afterEach, describe, expect, it } from 'vitest';
import type { MockAgent } from 'undici';
import { ConfigError } from '../../errors.ts';
import { buildVerifyUrl, createVerifyClient, isVerifyFailure, type VerifyClient, type VerifyClientOptions, type VerifyResult } from './verify-client.ts';
import { FakeClock } from '../../lib/fake-clock.ts';
import { CONSENT_BODY, NO_CONSENT_BODY, UPSTREAM_ORIGIN, baseOptions, flush, mockUpstream } from './test-helpers.ts';

interface Seen {
  path: string;
  headers: Record<string, string>;
  inFlight: number;
}

interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** A MockAgent upstream: replies are consumed in the order they were queued, one per call. */
class Upstream {
  readonly agent: MockAgent = mockUpstream();
  readonly seen: Seen[] = [];
  client: VerifyClient | undefined;

  reply(r: Reply = {}, times = 1): void {
    const scope = this.agent
      .get(UPSTREAM_ORIGIN)
      .intercept({ path: () => true, method: 'GET' })
      .reply((opts) => {
        this.seen.push({ path: opts.path, headers: { ...(opts.headers as Record<string, string>) }, inFlight: this.client?.stats().inFlight ?? -1 });
        const data = r.body === undefined ? JSON.stringify(CONSENT_BODY) : typeof r.body === 'string' || Buffer.isBuffer(r.body) ? r.body : JSON.stringify(r.body);
        return { statusCode: r.status ?? 200, data, responseOptions: { headers: { 'content-type': 'application/json', ...r.headers } } };
      });
    if (r.delayMs !== undefined) scope.delay(r.delayMs);
    scope.times(times);
  }

  error(err: Error): void {
    this.agent.get(UPSTREAM_ORIGIN).intercept({ path: () => true, method: 'GET' }).replyWithError(err);
  }
}

let up: Upstream | undefined;
let clock: FakeClock;

/** The upstream of the current test (created by `client`). */
function upstream(): Upstream {
  if (up === undefined) throw new Error('call client() first');
  return up;
}

function client(overrides: Partial<VerifyClientOptions> = {}): VerifyClient {
  const u = (up = new Upstream());
  clock = new FakeClock();
  const c = createVerifyClient(baseOptions({ dispatcher: u.agent, clock, ...overrides }));
  u.client = c;
  return c;
}

afterEach(async () => {
  const u = up;
  up = undefined;
  if (u !== undefined) {
    await u.client?.close();
    await u.agent.close();
  }
});

const failed = (r: VerifyResult) => (isVerifyFailure(r) ? r.failed : 'answer');

describe('request', () => {
  it('GETs the documented path with URL-encoded ids and the API key in X-API-Key', async () => {
    const c = client({ siteId: 'site/1' });
    upstream().reply();
    await c.lookup('v 1/?&x=y');
    expect(upstream().seen).toHaveLength(1);
    expect(upstream().seen[0]!.path).toBe('/api/v1/public/sites/site%2F1/consent/verify?visitor_id=v%201%2F%3F%26x%3Dy');
    expect(upstream().seen[0]!.headers['x-api-key']).toBe('key-123');
    expect(upstream().seen[0]!.headers.accept).toBe('application/json');
  });

  it('honours a configured URL template and API-key header', async () => {
    const c = client({ urlTemplate: `${UPSTREAM_ORIGIN}/v2/consent/{siteId}/{visitorId}`, baseUrl: undefined, apiKeyHeader: 'Authorization-Key' });
    upstream().reply();
    await c.lookup('abc');
    expect(upstream().seen[0]!.path).toBe('/v2/consent/site-1/abc');
    expect(upstream().seen[0]!.headers['authorization-key']).toBe('key-123');
  });

  it.each([
    ['{base}/s/{siteId}?v={visitorId}', { base: 'https://x.test/', siteId: 'a b', visitorId: '{siteId}' }, 'https://x.test/s/a%20b?v=%7BsiteId%7D'],
    ['{base}/s/{siteId}?v={visitorId}', { base: 'https://x.test', siteId: 's', visitorId: '../admin' }, 'https://x.test/s/s?v=..%2Fadmin'],
    ['https://y.test/{visitorId}/{visitorId}', { siteId: 's', visitorId: 'é' }, 'https://y.test/%C3%A9/%C3%A9'],
  ])('buildVerifyUrl(%s, %j) = %s', (template, values, expected) => {
    expect(buildVerifyUrl(template, values)).toBe(expected);
  });

  it.each<[string, Partial<VerifyClientOptions>]>([
    ['template without {visitorId}', { urlTemplate: '{base}/verify' }],
    ['{base} without baseUrl', { baseUrl: undefined }],
    ['not http(s)', { baseUrl: 'ftp://x.test' }],
    ['not a URL', { baseUrl: 'nonsense' }],
    ['bad header name', { apiKeyHeader: 'X API Key' }],
    ['empty API key', { apiKey: '' }],
    ['zero rate', { requestsPerMinute: 0 }],
    ['fractional rate', { requestsPerMinute: 1.5 }],
    ['negative TTL', { cacheTtlMs: -1 }],
    ['zero cache entries', { maxCacheEntries: 0 }],
    ['zero timeout', { timeoutMs: 0 }],
    ['bad breaker ratio', { breaker: { windowMs: 1000, minRequests: 1, errorRatio: 2, openMs: 10 } }],
    ['empty site category', { categoryMap: { marketing: '' } }],
  ])('rejects configuration: %s', (_name, bad) => {
    expect(() => createVerifyClient(baseOptions({ dispatcher: mockUpstream(), ...bad }))).toThrow(ConfigError);
  });

  it('an empty or over-long visitor id fails without a call', async () => {
    const c = client();
    expect(await c.lookup('')).toEqual({ failed: 'invalid_visitor' });
    expect(await c.lookup('x'.repeat(513))).toEqual({ failed: 'invalid_visitor' });
    expect(c.stats().calls).toBe(0);
  });
});

describe('answers and cache', () => {
  it('maps upstream categories through the configured map and caches the answer', async () => {
    const c = client();
    upstream().reply();
    const a = await c.lookup('v1');
    expect(a).toEqual({
      found: true,
      categories: { necessary: 'granted', analytics: 'granted', advertising: 'denied', functional: 'granted' },
      consentedAt: '2026-03-08T12:00:00Z',
      geoCountry: 'DE',
      fetchedAt: clock.now(),
    });
    expect(c.cached('v1')).toBe(a);
    expect(await c.lookup('v1')).toBe(a);
    expect(c.stats()).toMatchObject({ calls: 1, cacheHits: 1 });
  });

  it('an answer expires after cacheTtlMs; "no consent found" after the shorter negativeCacheTtlMs', async () => {
    const c = client({ cacheTtlMs: 300_000, negativeCacheTtlMs: 30_000 });
    upstream().reply({ body: CONSENT_BODY });
    upstream().reply({ body: NO_CONSENT_BODY });
    await c.lookup('yes');
    expect(await c.lookup('no')).toMatchObject({ found: false, categories: {} });
    clock.advance(29_999);
    expect(c.cached('no')).toBeDefined();
    clock.advance(1);
    expect(c.cached('no')).toBeUndefined();
    expect(c.cached('yes')).toBeDefined();
    clock.advance(300_000 - 30_000 - 1);
    expect(c.cached('yes')).toBeDefined();
    clock.advance(1);
    expect(c.cached('yes')).toBeUndefined();
    upstream().reply();
    await c.lookup('yes');
    expect(c.stats().calls).toBe(3);
  });

  it('the cache is bounded (least recently used goes first)', async () => {
    const c = client({ maxCacheEntries: 2 });
    upstream().reply({}, 4);
    await c.lookup('a');
    await c.lookup('b');
    c.cached('a'); // touch: b is now the least recently used
    await c.lookup('c');
    expect(c.cached('a')).toBeDefined();
    expect(c.cached('b')).toBeUndefined();
    expect(c.cached('c')).toBeDefined();
  });

  it('a cache miss is undefined, never consent', () => {
    const c = client();
    expect(c.cached('nobody')).toBeUndefined();
  });
});

describe('single flight', () => {
  it('1,000 concurrent lookups for one cold visitor make exactly one call and share one result', async () => {
    const c = client();
    upstream().reply({ delayMs: 20 });
    const results = await Promise.all(Array.from({ length: 1_000 }, () => c.lookup('hot')));
    expect(upstream().seen).toHaveLength(1);
    expect(new Set(results).size).toBe(1);
    expect(c.stats()).toMatchObject({ calls: 1, joined: 999, inFlight: 0 });
  });

  it('waiters share a failure too, and the failure is not cached as an answer', async () => {
    const c = client();
    upstream().reply({ status: 500, delayMs: 10 });
    const results = await Promise.all(Array.from({ length: 10 }, () => c.lookup('v')));
    expect(results.every((r) => failed(r) === 'http_error')).toBe(true);
    expect(c.stats().calls).toBe(1);
    expect(c.cached('v')).toBeUndefined();
  });
});

describe('request budget', () => {
  it('fails fast with budget_exhausted (no call) once the per-minute budget is used', async () => {
    const c = client({ requestsPerMinute: 3 });
    upstream().reply({}, 5);
    for (const v of ['a', 'b', 'c']) expect(failed(await c.lookup(v))).toBe('answer');
    const t0 = clock.now();
    expect(await c.lookup('d')).toEqual({ failed: 'budget_exhausted', retryAt: t0 + 60_000 });
    expect(c.stats()).toMatchObject({ calls: 3, budgetUsed: 3 });
    clock.advance(59_999);
    expect(failed(await c.lookup('d'))).toBe('budget_exhausted');
    clock.advance(1);
    expect(failed(await c.lookup('d'))).toBe('answer');
    expect(c.stats().calls).toBe(4);
  });

  it('cache hits and joined lookups cost no budget', async () => {
    const c = client({ requestsPerMinute: 1 });
    upstream().reply({ delayMs: 5 });
    await Promise.all([c.lookup('a'), c.lookup('a')]);
    await c.lookup('a');
    expect(c.stats()).toMatchObject({ calls: 1, budgetUsed: 1 });
  });
});

describe('Retry-After gate', () => {
  it('429 with Retry-After in seconds: no call before it expires, then exactly one probe', async () => {
    const c = client();
    upstream().reply({ status: 429, headers: { 'retry-after': '30' } });
    const t0 = clock.now();
    expect(await c.lookup('a')).toEqual({ failed: 'rate_limited', retryAt: t0 + 30_000 });
    expect(c.stats().notBefore).toBe(t0 + 30_000);
    upstream().reply({}, 10);
    for (const dt of [0, 10_000, 29_999 - 10_000]) {
      clock.advance(dt);
      expect(await c.lookup(`w${dt}`)).toEqual({ failed: 'rate_limited', retryAt: t0 + 30_000 });
    }
    expect(upstream().seen).toHaveLength(1);
    clock.advance(1);
    // At expiry, many visitors at once: one probe goes out, the rest still wait.
    const burst = await Promise.all(['p1', 'p2', 'p3', 'p4', 'p5'].map((v) => c.lookup(v)));
    expect(burst.map(failed)).toEqual(['answer', 'rate_limited', 'rate_limited', 'rate_limited', 'rate_limited']);
    expect(upstream().seen).toHaveLength(2);
    // The probe succeeded: the gate is open again.
    expect(c.stats().notBefore).toBeUndefined();
    expect(failed(await c.lookup('after'))).toBe('answer');
    expect(upstream().seen).toHaveLength(3);
  });

  it('429 with Retry-After as an HTTP-date (RFC 9110 §10.2.3)', async () => {
    const c = client();
    const until = Math.ceil(clock.now() / 1000) * 1000 + 90_000;
    upstream().reply({ status: 429, headers: { 'retry-after': new Date(until).toUTCString() } });
    expect(await c.lookup('a')).toEqual({ failed: 'rate_limited', retryAt: until });
    clock.advance(until - clock.now() - 1);
    expect(failed(await c.lookup('b'))).toBe('rate_limited');
    expect(upstream().seen).toHaveLength(1);
    clock.advance(1);
    upstream().reply();
    expect(failed(await c.lookup('b'))).toBe('answer');
  });

  it('a probe that gets 429 again waits out the new Retry-After', async () => {
    const c = client();
    upstream().reply({ status: 429, headers: { 'retry-after': '10' } });
    upstream().reply({ status: 429, headers: { 'retry-after': '20' } });
    await c.lookup('a');
    clock.advance(10_000);
    expect(failed(await c.lookup('a'))).toBe('rate_limited');
    expect(upstream().seen).toHaveLength(2);
    clock.advance(19_999);
    expect(failed(await c.lookup('a'))).toBe('rate_limited');
    expect(upstream().seen).toHaveLength(2);
  });

  it('429 without a usable Retry-After waits the fallback (one rate window)', async () => {
    const c = client({ rateLimitFallbackMs: 60_000 });
    upstream().reply({ status: 429, headers: { 'retry-after': 'later' } });
    const t0 = clock.now();
    expect(await c.lookup('a')).toEqual({ failed: 'rate_limited', retryAt: t0 + 60_000 });
  });

  it('503 with Retry-After: http_error, then rate_limited until it expires', async () => {
    const c = client({ random: () => 0 });
    upstream().reply({ status: 503, headers: { 'retry-after': '5' } });
    expect(await c.lookup('a')).toEqual({ failed: 'http_error', retryAt: clock.now() + 5_000 });
    expect(c.stats().notBefore).toBe(clock.now() + 5_000);
    clock.advance(4_999);
    expect(failed(await c.lookup('b'))).toBe('rate_limited');
    expect(upstream().seen).toHaveLength(1);
  });

  it('429 is not held against the upstream by the breaker', async () => {
    const c = client({ breaker: { windowMs: 60_000, minRequests: 1, errorRatio: 0.1, openMs: 30_000 } });
    upstream().reply({ status: 429, headers: { 'retry-after': '0' } });
    await c.lookup('a');
    expect(c.stats().breaker).toBe('closed');
  });
});

describe('backoff', () => {
  it('a 5xx sets a global "not before" with full jitter, then one probe; failures double the ceiling', async () => {
    const c = client({ backoff: { baseMs: 100, maxMs: 10_000 }, random: () => 0.5 });
    upstream().reply({ status: 500 });
    const t0 = clock.now();
    expect(failed(await c.lookup('a'))).toBe('http_error');
    expect(c.stats().notBefore).toBe(t0 + 50); // 0.5 × 100
    expect(await c.lookup('b')).toEqual({ failed: 'backing_off', retryAt: t0 + 50 });
    expect(upstream().seen).toHaveLength(1);
    clock.advance(50);
    upstream().reply({ status: 502 });
    expect(failed(await c.lookup('b'))).toBe('http_error');
    expect(c.stats().notBefore).toBe(t0 + 50 + 100); // 0.5 × 200
    clock.advance(100);
    upstream().reply();
    expect(failed(await c.lookup('c'))).toBe('answer');
    expect(c.stats().notBefore).toBeUndefined();
    // The success reset the count: the next failure starts from the base again.
    upstream().reply({ status: 500 });
    await c.lookup('d');
    expect(c.stats().notBefore).toBe(clock.now() + 50);
  });

  it('a timeout (the request timer on the injected clock) is a failure with backoff', async () => {
    const c = client({ timeoutMs: 2_000 });
    upstream().reply({ delayMs: 5_000 });
    const p = c.lookup('slow');
    await flush();
    expect(c.stats().inFlight).toBe(1);
    clock.advance(2_000);
    const r = await p;
    expect(r).toMatchObject({ failed: 'timeout' });
    expect(c.stats().notBefore).toBeDefined();
    expect((r as { retryAt?: number }).retryAt).toBe(c.stats().notBefore);
    expect(c.cached('slow')).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it.each([
    ['an undici headers timeout', 'timeout', Object.assign(new Error('headers'), { code: 'UND_ERR_HEADERS_TIMEOUT' })],
    ['a connection reset', 'network', Object.assign(new Error('reset'), { code: 'ECONNRESET' })],
    ['an error without a code', 'network', new Error('boom')],
  ])('%s reads as %s and backs off', async (_name, expected, err) => {
    const c = client();
    upstream().error(err);
    expect(await c.lookup('a')).toEqual({ failed: expected, retryAt: clock.now() + 50 });
    expect(c.stats().notBefore).toBe(clock.now() + 50);
  });

  it('4xx and malformed bodies do not back off (the upstream answered)', async () => {
    const c = client();
    upstream().reply({ status: 401 });
    upstream().reply({ body: 'not json' });
    expect(failed(await c.lookup('a'))).toBe('http_error');
    expect(failed(await c.lookup('b'))).toBe('malformed');
    expect(c.stats().notBefore).toBeUndefined();
  });
});

describe('bodies', () => {
  it.each<[string, Reply]>([
    ['not JSON', { body: '<html>oops</html>' }],
    ['the wrong shape', { body: { hasConsent: 'yes', categories: { marketing: true } } }],
    ['over maxBodyBytes', { body: { hasConsent: true, categories: { marketing: true }, pad: 'x'.repeat(20_000) } }],
    ['not UTF-8', { body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }],
  ])('%s is malformed, not cached, never consent', async (_name, reply) => {
    const c = client({ maxBodyBytes: 16 * 1024 });
    upstream().reply(reply);
    expect(await c.lookup('v')).toEqual({ failed: 'malformed' });
    expect(c.cached('v')).toBeUndefined();
  });

  it('a declared Content-Length over the limit is refused before reading', async () => {
    const c = client({ maxBodyBytes: 100 });
    upstream().reply({ headers: { 'content-length': '1000000' }, body: JSON.stringify(CONSENT_BODY) });
    expect(await c.lookup('v')).toEqual({ failed: 'malformed' });
  });

  it.each([[301], [204], [404]])('status %i is an http_error (redirects are not followed)', async (status) => {
    const c = client();
    upstream().reply({ status, headers: status === 301 ? { location: 'https://elsewhere.test/' } : {} });
    expect(await c.lookup('v')).toEqual({ failed: 'http_error' });
    expect(upstream().seen).toHaveLength(1);
  });
});

describe('failure memo', () => {
  it('a visitor\'s own failure is replayed for failureTtlMs without a call; other visitors are not affected', async () => {
    const c = client({ failureTtlMs: 1_000 });
    upstream().reply({ status: 404 }, 3);
    expect(failed(await c.lookup('a'))).toBe('http_error');
    expect(failed(await c.lookup('a'))).toBe('http_error');
    expect(c.stats().calls).toBe(1);
    await c.lookup('b');
    expect(c.stats().calls).toBe(2);
    clock.advance(1_000);
    await c.lookup('a');
    expect(c.stats().calls).toBe(3);
  });

  it('a replayed 5xx says when the visitor may get further (the memo\'s end); a replayed 4xx still says nothing', async () => {
    const c = client({ failureTtlMs: 1_000, backoff: { baseMs: 100, maxMs: 100 }, random: () => 0.5 });
    upstream().reply({ status: 500 });
    const t0 = clock.now();
    expect(await c.lookup('a')).toEqual({ failed: 'http_error', retryAt: t0 + 50 });
    clock.advance(50);
    expect(await c.lookup('a')).toEqual({ failed: 'http_error', retryAt: t0 + 1_000 });
    upstream().reply({ status: 404 });
    await c.lookup('b');
    expect(await c.lookup('b')).toEqual({ failed: 'http_error' });
    expect(c.stats().calls).toBe(2);
  });

  it('invalidate clears the memo', async () => {
    const c = client({ failureTtlMs: 60_000 });
    upstream().reply({ status: 404 });
    await c.lookup('a');
    c.invalidate('a');
    upstream().reply();
    expect(failed(await c.lookup('a'))).toBe('answer');
  });
});

describe('circuit breaker', () => {
  it('opens at volume + ratio, fails fast, then one half-open probe closes it', async () => {
    const c = client({ breaker: { windowMs: 60_000, minRequests: 3, errorRatio: 0.5, openMs: 30_000 } });
    upstream().reply({ status: 404 }, 3);
    expect(failed(await c.lookup('a'))).toBe('http_error');
    expect(c.stats().breaker).toBe('closed'); // one failure is not enough
    await c.lookup('b');
    await c.lookup('c');
    expect(c.stats().breaker).toBe('open');
    const t0 = clock.now();
    expect(await c.lookup('d')).toEqual({ failed: 'circuit_open', retryAt: t0 + 30_000 });
    expect(c.stats().calls).toBe(3);
    clock.advance(30_000);
    expect(c.stats().breaker).toBe('half-open');
    upstream().reply({ delayMs: 5 }, 5);
    const [probe, other] = await Promise.all([c.lookup('e'), c.lookup('f')]);
    expect(failed(probe)).toBe('answer');
    expect(other).toEqual({ failed: 'circuit_open' });
    expect(c.stats()).toMatchObject({ breaker: 'closed', calls: 4 });
  });

  it('a failed probe re-opens it', async () => {
    const c = client({ breaker: { windowMs: 60_000, minRequests: 1, errorRatio: 1, openMs: 1_000 } });
    upstream().reply({ status: 403 }, 2);
    await c.lookup('a');
    clock.advance(1_000);
    expect(failed(await c.lookup('b'))).toBe('http_error');
    expect(c.stats().breaker).toBe('open');
    expect(failed(await c.lookup('c'))).toBe('circuit_open');
  });
});

describe('readiness: when the upstream may be asked again', () => {
  it('open: now, no probe, the budget\'s room', async () => {
    const c = client({ requestsPerMinute: 3 });
    expect(c.readiness()).toEqual({ readyAt: clock.now(), probe: false, room: 3 });
    upstream().reply();
    await c.lookup('a');
    expect(c.readiness()).toEqual({ readyAt: clock.now(), probe: false, room: 2 });
  });

  it('inside a Retry-After window: its end and a probe; while the probe is out: unknown; after its answer: open', async () => {
    const c = client();
    upstream().reply({ status: 429, headers: { 'retry-after': '4' } });
    const t0 = clock.now();
    await c.lookup('a');
    expect(c.readiness()).toMatchObject({ readyAt: t0 + 4_000, probe: true });
    clock.advance(4_000);
    expect(c.readiness()).toMatchObject({ readyAt: t0 + 4_000, probe: true });
    upstream().reply({ delayMs: 5 });
    const probe = c.lookup('b');
    await flush(1);
    expect(c.readiness()).toEqual({ readyAt: undefined, probe: false, room: 0 });
    expect(failed(await probe)).toBe('answer');
    expect(c.readiness()).toMatchObject({ readyAt: clock.now(), probe: false });
  });

  it('after a 5xx: the backoff\'s end, the same time the failure carries', async () => {
    const c = client({ backoff: { baseMs: 1_000, maxMs: 10_000 }, random: () => 0.5 });
    upstream().reply({ status: 502 });
    const r = await c.lookup('a');
    expect(r).toEqual({ failed: 'http_error', retryAt: clock.now() + 500 });
    expect(c.readiness()).toMatchObject({ readyAt: clock.now() + 500, probe: true });
  });

  it('a 4xx carries no retry time and leaves the upstream ready', async () => {
    const c = client();
    upstream().reply({ status: 401 });
    expect(await c.lookup('a')).toEqual({ failed: 'http_error' });
    expect(c.readiness()).toMatchObject({ readyAt: clock.now(), probe: false });
  });

  it('an open circuit: when it half-opens, then a probe', async () => {
    const c = client({ breaker: { windowMs: 60_000, minRequests: 1, errorRatio: 1, openMs: 30_000 } });
    upstream().reply({ status: 404 });
    await c.lookup('a');
    expect(c.readiness()).toMatchObject({ readyAt: clock.now() + 30_000, probe: true });
    clock.advance(30_000);
    expect(c.readiness()).toMatchObject({ readyAt: clock.now(), probe: true });
  });

  it('an exhausted budget: when its oldest grant leaves the window; room 0 until then', async () => {
    const c = client({ requestsPerMinute: 2 });
    upstream().reply({}, 2);
    const t0 = clock.now();
    await c.lookup('a');
    await c.lookup('b');
    expect(c.readiness()).toEqual({ readyAt: t0 + 60_000, probe: false, room: 0 });
    clock.advance(60_000);
    expect(c.readiness()).toEqual({ readyAt: t0 + 60_000, probe: false, room: 2 });
  });

  it('reading it takes nothing from the budget and calls nobody', async () => {
    const c = client({ requestsPerMinute: 1 });
    for (let i = 0; i < 5; i++) c.readiness();
    upstream().reply();
    expect(failed(await c.lookup('a'))).toBe('answer');
    expect(upstream().seen).toHaveLength(1);
  });
});

describe('revocation wins', () => {
  it('invalidate during a fetch: the older answer is not cached and its waiters get superseded', async () => {
    const c = client();
    upstream().reply({ delayMs: 30 });
    const first = c.lookup('v');
    const joined = c.lookup('v');
    await flush();
    c.invalidate('v');
    expect(await first).toEqual({ failed: 'superseded' });
    expect(await joined).toEqual({ failed: 'superseded' });
    expect(c.cached('v')).toBeUndefined();
  });

  it('a lookup after the invalidation waits for the old request, then makes its own (one on the wire at a time)', async () => {
    const c = client();
    upstream().reply({ delayMs: 30, body: { hasConsent: true, categories: { marketing: true } } });
    upstream().reply({ body: { hasConsent: true, categories: { marketing: false } } });
    const old = c.lookup('v');
    await flush();
    c.invalidate('v');
    const fresh = c.lookup('v');
    const fresh2 = c.lookup('v');
    expect(await old).toEqual({ failed: 'superseded' });
    const answer = await fresh;
    expect(answer).toMatchObject({ categories: { advertising: 'denied' } });
    expect(await fresh2).toBe(answer);
    expect(upstream().seen.map((s) => s.inFlight)).toEqual([1, 1]);
    expect(c.cached('v')).toBe(answer);
  });

  it('invalidate drops a cached answer', async () => {
    const c = client();
    upstream().reply({}, 2);
    await c.lookup('v');
    c.invalidate('v');
    expect(c.cached('v')).toBeUndefined();
    await c.lookup('v');
    expect(c.stats().calls).toBe(2);
  });

  it('invalidate of an unknown visitor is harmless', () => {
    const c = client();
    expect(() => c.invalidate('nobody')).not.toThrow();
  });
});

describe('close', () => {
  it('aborts requests in flight and refuses new lookups', async () => {
    const c = client();
    upstream().reply({ delayMs: 5_000 });
    const p = c.lookup('v');
    await flush();
    await c.close();
    expect(await p).toEqual({ failed: 'closed' });
    expect(await c.lookup('w')).toEqual({ failed: 'closed' });
    expect(c.cached('v')).toBeUndefined();
    expect(c.stats().inFlight).toBe(0);
  });
});
