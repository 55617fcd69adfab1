import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Agent, Dispatcher } from 'undici';
import { ConfigError } from '../errors.ts';
import { bodyText } from '../destinations/types.ts';
import { createDelivery, createMemoryOutbox, type DeliveryOptions, type DeliveryResult } from './delivery.ts';
import { createDeliveryAgent } from './sender.ts';
import { batchIds, FakeClock, fakeDestination, refusedUrl, renderedItem, startServer, type TestHandler, type TestServer } from './test-helpers.ts';

let agent: Agent;
const servers: TestServer[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  agent = createDeliveryAgent({ connectionsPerOrigin: 8 });
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await agent.close();
});

async function server(handler?: TestHandler): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

const FAST_RETRY = { maxAttempts: 3, maxTotalMs: 5_000, baseDelayMs: 10, maxDelayMs: 50 };

function setup(over: Partial<DeliveryOptions> = {}) {
  const results: DeliveryResult[] = [];
  const outbox = createMemoryOutbox();
  const delivery = createDelivery({ agent, retry: FAST_RETRY, onResult: (r) => results.push(r), outbox, ...over });
  cleanups.push(() => delivery.close().catch(() => undefined));
  const of = (outcome: DeliveryResult['outcome']) => results.filter((r) => r.outcome === outcome);
  return { delivery, results, outbox, of };
}

async function waitFor(predicate: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('delivery: batching into a local server', () => {
  it('batches by count, sends the remainder on flush, reports each batch delivered', async () => {
    const s = await server();
    const dest = fakeDestination({ url: `${s.url}/collect`, limits: { maxEvents: 3, lingerMs: 10_000 } });
    const { delivery, of } = setup();
    for (const id of ids('e', 7)) expect(delivery.enqueue(dest, renderedItem(id))).toBe(true);
    await waitFor(() => of('delivered').length === 2);
    await delivery.flush(1_000);
    expect(s.received.map((r) => batchIds(r.body))).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(of('delivered').map((r) => r.messageIds)).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(of('delivered')[0]).toMatchObject({ destinationId: 'fake', status: 200, attempt: 1 });
    expect(delivery.stats()).toEqual({ fake: { queued: 0, open: 0, ready: 0, inFlight: 0, awaitingRetry: 0 } });
  });

  it('batches by bytes', async () => {
    const s = await server();
    const itemBytes = JSON.stringify(renderedItem('b0', { padBytes: 80 }).item).length;
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 100, maxBytes: 2 * itemBytes + 1, lingerMs: 10_000 } });
    const { delivery } = setup();
    for (const id of ids('b', 5)) delivery.enqueue(dest, renderedItem(id, { padBytes: 80 }));
    await delivery.flush(1_000);
    expect(s.received.map((r) => batchIds(r.body))).toEqual([['b0', 'b1'], ['b2', 'b3'], ['b4']]);
  });

  it('sends a partial batch once lingerMs has passed since its first event', async () => {
    const s = await server();
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 100, lingerMs: 80 } });
    const { delivery, of } = setup();
    const started = Date.now();
    delivery.enqueue(dest, renderedItem('l0'));
    delivery.enqueue(dest, renderedItem('l1'));
    await waitFor(() => of('delivered').length === 1);
    expect(s.received[0]!.at - started).toBeGreaterThanOrEqual(75);
    expect(batchIds(s.received[0]!.body)).toEqual(['l0', 'l1']);
  });

  it('refuses an item over maxBytes as a failed delivery, never sent', async () => {
    const s = await server();
    const dest = fakeDestination({ url: s.url, limits: { maxBytes: 50 } });
    const { delivery, results } = setup();
    expect(delivery.enqueue(dest, renderedItem('huge', { padBytes: 100 }))).toBe(false);
    await delivery.flush(500);
    expect(results).toEqual([{ destinationId: 'fake', messageIds: ['huge'], outcome: 'failed', attempt: 0, reason: 'item_too_large', durationMs: 0 }]);
    expect(s.received).toHaveLength(0);
  });

  it('keeps at most maxInFlight requests open per destination', async () => {
    let open = 0;
    let peak = 0;
    const s = await server((_req, res) => {
      open += 1;
      peak = Math.max(peak, open);
      setTimeout(() => {
        open -= 1;
        res.end('ok');
      }, 40);
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const { delivery, of } = setup({ destinations: { fake: { maxInFlight: 2 } } });
    for (const id of ids('c', 6)) delivery.enqueue(dest, renderedItem(id));
    await delivery.flush(3_000);
    expect(of('delivered')).toHaveLength(6);
    expect(peak).toBe(2);
  });

  it('refuses with queue_full beyond maxQueuedEvents, reports it, and accepts again once settled', async () => {
    const s = await server();
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 10, lingerMs: 10_000 } });
    const { delivery, of } = setup({ defaults: { maxQueuedEvents: 2 } });
    expect(delivery.enqueue(dest, renderedItem('q0'))).toBe(true);
    expect(delivery.enqueue(dest, renderedItem('q1'))).toBe(true);
    expect(delivery.enqueue(dest, renderedItem('q2'))).toBe(false);
    expect(of('failed')).toEqual([{ destinationId: 'fake', messageIds: ['q2'], outcome: 'failed', attempt: 0, reason: 'queue_full', durationMs: 0 }]);
    await delivery.flush(1_000);
    expect(delivery.enqueue(dest, renderedItem('q3'))).toBe(true);
  });
});

describe('delivery: retries', () => {
  it('honours Retry-After (elapsed >= its value) and resends the same batch with the same keys', async () => {
    const s = await server((_req, res, i) => {
      if (i === 0) {
        res.writeHead(503, { 'retry-after': '1' });
        res.end();
      } else {
        res.end('ok');
      }
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 2 } });
    const { delivery, results, of } = setup();
    delivery.enqueue(dest, renderedItem('r0'));
    delivery.enqueue(dest, renderedItem('r1'));
    await waitFor(() => of('delivered').length === 1);
    expect(s.received).toHaveLength(2);
    expect(s.received[1]!.at - s.received[0]!.at).toBeGreaterThanOrEqual(1_000);
    expect(s.received[1]!.body).toBe(s.received[0]!.body);
    expect(results.map((r) => [r.outcome, r.status, r.attempt, r.reason])).toEqual([
      ['retry_scheduled', 503, 1, 'status_503'],
      ['delivered', 200, 2, undefined],
    ]);
    expect(results[0]!.retryInMs).toBeGreaterThanOrEqual(1_000);
  });

  it('retries network errors and gives up after maxAttempts, parking a dead letter', async () => {
    // The connection is cut without a response.
    const s = await server((_req, res) => {
      res.socket?.destroy();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const { delivery, of, outbox } = setup();
    delivery.enqueue(dest, renderedItem('n0'));
    await waitFor(() => of('failed').length === 1);
    expect(s.received).toHaveLength(3);
    expect(of('retry_scheduled')).toHaveLength(2);
    expect(of('failed')[0]).toMatchObject({ reason: 'max_attempts', attempt: 3 });
    await waitFor(() => outbox.entries.length === 1);
    expect(outbox.entries[0]).toMatchObject({ destinationId: 'fake', messageIds: ['n0'], reason: 'gave_up:max_attempts', attempts: 3 });
  });

  it('does not retry a POST without an idempotency key after a bare 503 (it may have been processed)', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 }, idempotent: false });
    const { delivery, of, outbox } = setup();
    delivery.enqueue(dest, renderedItem('p0'));
    await delivery.flush(1_000);
    expect(s.received).toHaveLength(1);
    expect(of('failed')).toEqual([expect.objectContaining({ messageIds: ['p0'], status: 503, reason: 'not_idempotent', attempt: 1 })]);
    expect(outbox.entries.map((e) => e.reason)).toEqual(['gave_up:not_idempotent']);
  });

  it("retries an error answer the template calls temporary (Meta's rate limits come as 400), and gives up on others", async () => {
    const s = await server((req, res, index) => {
      const limited = index === 0 || req.body.includes('"bad"');
      res.writeHead(limited ? 400 : 200, { 'content-type': 'application/json' });
      res.end(limited ? JSON.stringify({ error: { code: req.body.includes('"bad"') ? 100 : 4, message: 'x' } }) : '{}');
    });
    const transientResponse = (status: number, body: string): boolean => status === 400 && body.includes('"code":4');
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 }, transientResponse });
    const { delivery, of } = setup();
    delivery.enqueue(dest, renderedItem('t0'));
    await waitFor(() => of('delivered').length === 1);
    expect(of('retry_scheduled')[0]).toMatchObject({ status: 400, reason: 'status_400_transient' });
    delivery.enqueue(dest, renderedItem('bad'));
    await waitFor(() => of('failed').length === 1);
    expect(of('failed')[0]).toMatchObject({ messageIds: ['bad'], reason: 'status_400', attempt: 1 });
  });

  it('retries a POST without an idempotency key when it never left (connection refused)', async () => {
    const dest = fakeDestination({ url: await refusedUrl(), limits: { maxEvents: 1 }, idempotent: false });
    const { delivery, of } = setup();
    delivery.enqueue(dest, renderedItem('r0'));
    await waitFor(() => of('failed').length === 1);
    expect(of('retry_scheduled')).toHaveLength(2);
    expect(of('failed')[0]).toMatchObject({ reason: 'max_attempts', attempt: 3 });
  });

  it('gives up at once on a permanent rejection, keeping a masked excerpt and no URL', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 400;
      res.end('{"error":"Invalid OAuth access token TOPSECRET"}');
    });
    const dest = fakeDestination({ url: `${s.url}/events?access_token=TOPSECRET`, limits: { maxEvents: 1 }, secretValues: ['TOPSECRET'] });
    const { delivery, results, outbox } = setup();
    delivery.enqueue(dest, renderedItem('x0'));
    await delivery.flush(1_000);
    expect(results).toEqual([
      expect.objectContaining({ outcome: 'failed', status: 400, reason: 'status_400', responseExcerpt: '{"error":"Invalid OAuth access token [secret]"}' }),
    ]);
    expect(JSON.stringify(results)).not.toContain('TOPSECRET');
    expect(JSON.stringify(results)).not.toContain(s.url);
    // The outbox keeps the full request: it must be able to resend it.
    expect(outbox.entries[0]!.request.url).toContain('access_token=TOPSECRET');
  });

  it('re-checks consent before a retry and drops revoked events', async () => {
    const s = await server((_req, res, i) => {
      res.statusCode = i === 0 ? 503 : 200;
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 3 } });
    const calls: [string, string[]][] = [];
    const { delivery, of } = setup({
      recheck: (destinationId, messageIds) => {
        calls.push([destinationId, messageIds]);
        // Allowed at the first send; v1 revoked by the time of the retry.
        return Promise.resolve(new Set(messageIds.filter((id) => calls.length === 1 || id !== 'v1')));
      },
    });
    for (const id of ids('v', 3)) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('delivered').length === 1);
    expect(calls).toEqual([
      ['fake', ['v0', 'v1', 'v2']],
      ['fake', ['v0', 'v1', 'v2']],
    ]);
    expect(of('dropped')).toEqual([{ destinationId: 'fake', messageIds: ['v1'], outcome: 'dropped', attempt: 1, reason: 'consent_revoked_before_retry', durationMs: 0 }]);
    expect(batchIds(s.received[1]!.body)).toEqual(['v0', 'v2']);
    expect(of('delivered')[0]!.messageIds).toEqual(['v0', 'v2']);
    expect(delivery.stats().fake!.queued).toBe(0);
  });

  it('regression: a first attempt was sent without re-checking consent (a revocation while the batch lingered)', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 200;
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 3 } });
    const { delivery, of } = setup({ recheck: (_d, messageIds) => new Set(messageIds.filter((id) => id !== 'v1')) });
    for (const id of ids('v', 3)) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('delivered').length === 1);
    expect(of('dropped')).toEqual([{ destinationId: 'fake', messageIds: ['v1'], outcome: 'dropped', attempt: 0, reason: 'consent_revoked_before_send', durationMs: 0 }]);
    expect(s.received).toHaveLength(1);
    expect(batchIds(s.received[0]!.body)).toEqual(['v0', 'v2']);
  });

  it('sends nothing when every event was revoked, and dead-letters when the recheck fails', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const seen = new Set<string>();
    const { delivery, of, outbox } = setup({
      recheck: (_destinationId, messageIds) => {
        const id = messageIds[0]!;
        // Allowed at the first send; before the retry one is revoked and the other cannot be checked.
        if (!seen.has(id)) {
          seen.add(id);
          return new Set(messageIds);
        }
        if (id === 'all-revoked') return new Set<string>();
        throw new Error('consent store down');
      },
    });
    delivery.enqueue(dest, renderedItem('all-revoked'));
    delivery.enqueue(dest, renderedItem('recheck-fails'));
    await waitFor(() => of('dropped').length === 1 && of('failed').length === 1);
    await delivery.flush(1_000);
    expect(s.received).toHaveLength(2);
    expect(of('failed')[0]).toMatchObject({ reason: 'recheck_failed' });
    expect(outbox.entries.map((e) => e.reason)).toEqual(['gave_up:recheck_failed']);
  });
});

/** Lets undici's callbacks and the server's handlers run; the fake clock does not move. */
async function settleIo(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A dispatcher over the shared agent that records the (fake) time at which each request leaves,
 * by origin: what the pause must hold back is the request on the wire.
 */
function recordingAgent(clock: FakeClock): { dispatcher: Dispatcher; startsTo: (url: string) => number[] } {
  const starts: { origin: string; at: number }[] = [];
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    starts.push({ origin: String(opts.origin), at: clock.now() });
    return dispatch(opts, handler);
  });
  return { dispatcher, startsTo: (url) => starts.filter((s) => s.origin === new URL(url).origin).map((s) => s.at) };
}

describe('delivery: a Retry-After pauses the destination, not one batch', () => {
  it('a 429 Retry-After: 5 on one batch: no request of that destination inside the 5 s, every batch delivered after, another destination unaffected', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const t0 = clock.now();
    const limited = await server((_req, res, i) => {
      if (i === 0) res.writeHead(429, { 'retry-after': '5' });
      res.end();
    });
    const other = await server();
    // GA4's case: a POST without an idempotency key.
    const ga4 = fakeDestination({ id: 'ga4', url: limited.url, limits: { maxEvents: 1, lingerMs: 0 }, idempotent: false });
    const meta = fakeDestination({ id: 'meta', url: other.url, limits: { maxEvents: 1, lingerMs: 0 } });
    const wire = recordingAgent(clock);
    const starts = (): number[] => wire.startsTo(limited.url);
    const { delivery, of } = setup({ agent: wire.dispatcher, clock, random: () => 0, retry: { ...FAST_RETRY, maxTotalMs: 60_000 } });

    delivery.enqueue(ga4, renderedItem('g0'));
    await waitFor(() => of('retry_scheduled').length === 1);
    expect(of('retry_scheduled')[0]).toMatchObject({ messageIds: ['g0'], status: 429, reason: 'status_429', retryInMs: 5_000 });

    // Other batches of the paused destination come due during the pause; another destination's too.
    for (const id of ['g1', 'g2', 'g3']) delivery.enqueue(ga4, renderedItem(id));
    delivery.enqueue(meta, renderedItem('m0'));
    await waitFor(() => of('delivered').length === 1);
    expect(of('delivered')[0]).toMatchObject({ destinationId: 'meta', messageIds: ['m0'] });
    expect(delivery.stats().ga4).toMatchObject({ ready: 3, inFlight: 0, awaitingRetry: 1 });

    for (const step of [1_000, 2_000, 1_999]) {
      clock.advance(step);
      await settleIo();
      expect(starts()).toEqual([t0]);
    }
    expect(limited.received).toHaveLength(1);

    clock.advance(1); // t0 + 5 s: the window is over
    await waitFor(() => of('delivered').length === 5);
    expect(starts()).toHaveLength(5);
    expect(starts().slice(1).every((t) => t >= t0 + 5_000)).toBe(true);
    expect(of('delivered').filter((r) => r.destinationId === 'ga4').map((r) => r.messageIds[0]).sort()).toEqual(['g0', 'g1', 'g2', 'g3']);
    expect(of('failed')).toEqual([]);
    expect(limited.received).toHaveLength(5);
  });

  it('a batch due during the pause waits for its end; one due after keeps its own backoff', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const t0 = clock.now();
    const seen = new Set<string>();
    const s = await server((req, res) => {
      const first = !seen.has(req.body);
      seen.add(req.body);
      if (first && req.body.includes('"a0"')) res.writeHead(429, { 'retry-after': '2' });
      else if (first) res.statusCode = 503;
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1, lingerMs: 0 } });
    const wire = recordingAgent(clock);
    const starts = (): number[] => wire.startsTo(s.url);
    // Base 10 s, attempt 1: c0's backoff is 9,990 ms (after the pause), b0's 1,000 ms (inside it),
    // a0's 0 (its Retry-After rules).
    const draws = [0.999, 0.1, 0];
    const { delivery, of } = setup({ agent: wire.dispatcher, clock, random: () => draws.shift() ?? 0, retry: { maxAttempts: 3, maxTotalMs: 60_000, baseDelayMs: 10_000, maxDelayMs: 60_000 } });
    // a0 last: once it has its 429 no other request may start.
    for (const [i, id] of ['c0', 'b0', 'a0'].entries()) {
      delivery.enqueue(dest, renderedItem(id));
      await waitFor(() => of('retry_scheduled').length === i + 1);
    }
    expect(of('retry_scheduled').map((r) => [r.messageIds[0], r.retryInMs])).toEqual([['c0', 9_990], ['b0', 1_000], ['a0', 2_000]]);

    clock.advance(1_000); // b0 is due, the destination is paused
    await settleIo();
    expect(starts()).toEqual([t0, t0, t0]);
    expect(delivery.stats().fake).toMatchObject({ ready: 1, awaitingRetry: 2 });

    clock.advance(1_000); // the pause is over: b0 and a0 go out
    await waitFor(() => of('delivered').length === 2);
    expect(of('delivered').map((r) => r.messageIds[0]).sort()).toEqual(['a0', 'b0']);

    clock.advance(7_989);
    await settleIo();
    expect(starts()).toHaveLength(5);
    clock.advance(1);
    await waitFor(() => of('delivered').length === 3);
    expect(starts()).toEqual([t0, t0, t0, t0 + 2_000, t0 + 2_000, t0 + 9_990]);
  });

  it('flush parks at once what a pause holds past the budget, with the end of the pause as notBefore', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const t0 = clock.now();
    const s = await server((_req, res, i) => {
      if (i === 0) res.writeHead(429, { 'retry-after': '30' });
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1, lingerMs: 0 }, idempotent: false });
    const { delivery, of, outbox } = setup({ clock, random: () => 0, retry: { ...FAST_RETRY, maxTotalMs: 60_000 } });
    delivery.enqueue(dest, renderedItem('p0'));
    await waitFor(() => of('retry_scheduled').length === 1);
    delivery.enqueue(dest, renderedItem('p1'));
    await delivery.flush(1_000);
    expect(s.received).toHaveLength(1);
    expect(of('parked').map((r) => r.messageIds[0]).sort()).toEqual(['p0', 'p1']);
    expect(outbox.entries.map((e) => e.notBefore)).toEqual([t0 + 30_000, t0 + 30_000]);
  });

  it('an absurd Retry-After pauses the destination for the retry window, not until restart', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const t0 = clock.now();
    const s = await server((_req, res, i) => {
      if (i === 0) res.writeHead(429, { 'retry-after': '9'.repeat(400) });
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1, lingerMs: 0 } });
    const wire = recordingAgent(clock);
    const starts = (): number[] => wire.startsTo(s.url);
    const { delivery, of } = setup({ agent: wire.dispatcher, clock, retry: { ...FAST_RETRY, maxTotalMs: 60_000 } });
    delivery.enqueue(dest, renderedItem('x0'));
    await waitFor(() => of('failed').length === 1);
    expect(of('failed')[0]).toMatchObject({ messageIds: ['x0'], reason: 'retry_after_beyond_deadline' });
    delivery.enqueue(dest, renderedItem('x1'));
    clock.advance(59_999);
    await settleIo();
    expect(starts()).toEqual([t0]);
    clock.advance(1);
    await waitFor(() => of('delivered').length === 1);
    expect(starts()).toEqual([t0, t0 + 60_000]);
  });
});

describe('delivery: a batch the vendor rejects whole is bisected', () => {
  // Meta's answer to a batch with an invalid event (Graph API error format; a captured example is
  // quoted in templates/meta-capi/README.md): the whole request is refused, nothing is processed.
  const META_INVALID = JSON.stringify({
    error: { message: 'Invalid parameter', type: 'OAuthException', code: 100, error_subcode: 2804016, is_transient: false, error_user_title: 'User Parameter Not Hashed', error_user_msg: 'The ct parameter is not hashed.', fbtrace_id: 'AbCdEf123' },
  });
  const rejectsBatch = (status: number, body: string): boolean => status === 400 && (JSON.parse(body) as { error?: { code?: unknown } }).error?.code === 100;

  /** A vendor that refuses, Meta's way, any batch holding one of `bad`, and accepts the rest. */
  async function metaLike(bad: ReadonlySet<string>, body = META_INVALID): Promise<TestServer> {
    return server((req, res) => {
      if (batchIds(req.body).some((id) => bad.has(id))) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(body);
      } else {
        res.end('{"events_received":1}');
      }
    });
  }

  it('a Meta batch with one bad event is bisected: the 15 others delivered once each, the bad one failed with the vendor message, 2·log2(16) extra requests', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const s = await metaLike(new Set(['e5']));
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 16, lingerMs: 10_000 }, rejectsBatch });
    const { delivery, of, outbox } = setup({ clock });
    for (const id of ids('e', 16)) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('failed').length === 1 && of('delivered').length === 4);
    await delivery.flush(1_000);

    expect(s.received).toHaveLength(1 + 2 * Math.log2(16));
    const delivered = of('delivered').flatMap((r) => r.messageIds);
    expect(delivered.sort()).toEqual(ids('e', 16).filter((id) => id !== 'e5').sort());
    expect(of('failed')).toEqual([
      { destinationId: 'fake', messageIds: ['e5'], outcome: 'failed', status: 400, attempt: 1, reason: 'status_400', durationMs: expect.any(Number) as number, responseExcerpt: expect.stringContaining('"error_user_msg":"The ct parameter is not hashed."') as string },
    ]);
    expect(outbox.entries.map((e) => [e.messageIds, e.reason])).toEqual([[['e5'], 'gave_up:status_400']]);
    // The halves: [0,8) and [8,16), then [0,4) and [4,8), [4,6) and [6,8), [4] and [5].
    expect(s.received.map((r) => batchIds(r.body).length)).toEqual([16, 8, 8, 4, 4, 2, 2, 1, 1]);
    expect(delivery.stats().fake).toMatchObject({ queued: 0, ready: 0, inFlight: 0 });
  });

  it('two bad events in different halves: both isolated, the rest delivered', async () => {
    const s = await metaLike(new Set(['f1', 'f6']));
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 8, lingerMs: 10_000 }, rejectsBatch });
    const { delivery, of } = setup({ clock: new FakeClock() });
    for (const id of ids('f', 8)) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('failed').length === 2);
    await delivery.flush(1_000);
    expect(of('failed').map((r) => r.messageIds[0]).sort()).toEqual(['f1', 'f6']);
    expect(of('delivered').flatMap((r) => r.messageIds).sort()).toEqual(['f0', 'f2', 'f3', 'f4', 'f5', 'f7']);
    expect(s.received.length - 1).toBeLessThanOrEqual(2 * 2 * Math.log2(8));
  });

  it('the halves are consent re-checked before they go out', async () => {
    const s = await metaLike(new Set(['r2']));
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 4, lingerMs: 10_000 }, rejectsBatch });
    const asked: string[][] = [];
    const { delivery, of } = setup({
      clock: new FakeClock(),
      recheck: (_dest, messageIds) => {
        asked.push(messageIds);
        // Allowed at the batch's first send; r0 revoked by the time the halves go out.
        return new Set(messageIds.filter((id) => asked.length === 1 || id !== 'r0'));
      },
    });
    for (const id of ids('r', 4)) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('failed').length === 1);
    await delivery.flush(1_000);
    expect(asked).toContainEqual(['r0', 'r1']);
    expect(of('dropped')).toMatchObject([{ messageIds: ['r0'], reason: 'consent_revoked_before_retry' }]);
    expect(s.received.slice(1).flatMap((r) => batchIds(r.body))).not.toContain('r0');
    expect(of('delivered').flatMap((r) => r.messageIds).sort()).toEqual(['r1', 'r3']);
    expect(of('failed').map((r) => r.messageIds)).toEqual([['r2']]);
  });

  it('an error answer outside the template\'s rules (an expired token) gives the batch up whole, unsplit', async () => {
    const expired = JSON.stringify({ error: { message: 'Error validating access token', type: 'OAuthException', code: 190, fbtrace_id: 'X' } });
    const s = await metaLike(new Set(['t0']), expired);
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 4, lingerMs: 10_000 }, rejectsBatch: (status, body) => status === 400 && body.includes('"code":100') });
    const { delivery, of } = setup({ clock: new FakeClock() });
    for (const id of ids('t', 4)) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('failed').length === 1);
    expect(of('failed')[0]).toMatchObject({ messageIds: ['t0', 't1', 't2', 't3'], reason: 'status_400' });
    expect(s.received).toHaveLength(1);
  });

  it('a vendor that rejects every request the same way costs the batch its budget, then the parts still rejected give up whole', async () => {
    const all = new Set(ids('w', 1000));
    const s = await metaLike(all);
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1000, maxBytes: 1_000_000, lingerMs: 10_000 }, rejectsBatch });
    const { delivery, of } = setup({ clock: new FakeClock(), defaults: { maxInFlight: 8 } });
    for (const id of all) delivery.enqueue(dest, renderedItem(id));
    await waitFor(() => of('failed').reduce((n, r) => n + r.messageIds.length, 0) === 1000, 10_000);
    await delivery.flush(1_000);
    // MAX_ISOLATED_PER_BATCH (8) invalid events' worth: 8 · 2 · ⌈log2 1000⌉ = 160 extra requests.
    expect(s.received).toHaveLength(1 + 160);
    const failed = of('failed').flatMap((r) => r.messageIds);
    expect(new Set(failed).size).toBe(1000);
    expect(failed).toHaveLength(1000);
    expect(of('delivered')).toEqual([]);
  });
});

describe('delivery: flush, shutdown and the outbox', () => {
  it('parks at once a retry that cannot happen before the deadline, keeping its notBefore', async () => {
    const s = await server((_req, res) => {
      res.writeHead(503, { 'retry-after': '3' });
      res.end();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const { delivery, of, outbox } = setup();
    delivery.enqueue(dest, renderedItem('w0'));
    const started = Date.now();
    await delivery.flush(2_000);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(of('parked')).toEqual([expect.objectContaining({ messageIds: ['w0'], reason: 'shutdown', attempt: 1 })]);
    expect(outbox.entries).toHaveLength(1);
    const entry = outbox.entries[0]!;
    expect(entry).toMatchObject({ reason: 'shutdown', attempts: 1, request: { method: 'POST', url: s.url } });
    expect(entry.notBefore! - entry.firstAttemptAt!).toBeGreaterThanOrEqual(3_000);
    expect(batchIds(bodyText(entry.request)!)).toEqual(['w0']);
  });

  it('after the deadline, aborts what is in flight and parks it with open batches', async () => {
    const hang = await server(() => {
      // never answers
    });
    const dest = fakeDestination({ id: 'slow', url: hang.url, limits: { maxEvents: 1 } });
    const { delivery, of, outbox } = setup({ defaults: { requestTimeoutMs: 10_000 } });
    delivery.enqueue(dest, renderedItem('h0'));
    await waitFor(() => hang.received.length === 1);
    const started = Date.now();
    await delivery.flush(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(of('parked').map((r) => r.messageIds)).toEqual([['h0']]);
    expect(outbox.entries).toEqual([expect.objectContaining({ destinationId: 'slow', messageIds: ['h0'], reason: 'shutdown', attempts: 1 })]);
  });

  it('close() parks pending batches without sending and refuses later events', async () => {
    const s = await server();
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 10, lingerMs: 10_000 } });
    const { delivery, of, outbox } = setup();
    delivery.enqueue(dest, renderedItem('s0'));
    delivery.enqueue(dest, renderedItem('s1'));
    await delivery.close();
    expect(s.received).toHaveLength(0);
    expect(outbox.entries).toEqual([expect.objectContaining({ messageIds: ['s0', 's1'], reason: 'shutdown', attempts: 0 })]);
    expect(outbox.entries[0]!.firstAttemptAt).toBeUndefined();
    expect(of('parked')).toHaveLength(1);
    expect(delivery.enqueue(dest, renderedItem('s2'))).toBe(false);
    expect(of('failed')).toEqual([expect.objectContaining({ messageIds: ['s2'], reason: 'closed' })]);
  });

  it('reports (and rejects the flush) when the outbox refuses, never dropping silently', async () => {
    const s = await server();
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 10, lingerMs: 10_000 } });
    const { delivery, of } = setup({ outbox: { park: () => Promise.reject(new Error('disk full')) } });
    delivery.enqueue(dest, renderedItem('o0'));
    await expect(delivery.close()).rejects.toThrow(/outbox refused/);
    expect(of('failed')).toEqual([expect.objectContaining({ messageIds: ['o0'], reason: 'outbox_park_failed' })]);
  });

  it('an onResult that throws does not break delivery', async () => {
    const s = await server();
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const { delivery } = setup({
      onResult: () => {
        throw new Error('observer bug');
      },
    });
    expect(delivery.enqueue(dest, renderedItem('t0'))).toBe(true);
    await delivery.flush(1_000);
    expect(s.received).toHaveLength(1);
  });
});

describe('delivery: configuration', () => {
  it.each<[string, Partial<DeliveryOptions>]>([
    ['maxAttempts 0', { retry: { maxAttempts: 0 } }],
    ['maxTotalMs beyond a timer', { retry: { maxTotalMs: 2 ** 31 } }],
    ['negative baseDelayMs', { retry: { baseDelayMs: -1 } }],
    ['maxInFlight 0', { defaults: { maxInFlight: 0 } }],
    ['override maxQueuedEvents 1.5', { destinations: { meta: { maxQueuedEvents: 1.5 } } }],
    ['requestTimeoutMs 0', { defaults: { requestTimeoutMs: 0 } }],
  ])('rejects %s with a ConfigError', (_name, over) => {
    expect(() => createDelivery({ agent, onResult: () => undefined, outbox: createMemoryOutbox(), ...over })).toThrow(ConfigError);
  });
});
