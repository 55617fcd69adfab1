/**
 * createDelivery end to end over real HTTP: the shared undici agent, the outbound sender
 * (src/lib/http/send.ts), and a local server on 127.0.0.1. The parts' behaviour is unit-tested in
 * src/delivery/ on a fake clock with a fake sender; these tests check what only real sockets show
 * (concurrency on the wire, connection errors, aborted requests, masked excerpts). They wait on
 * results and on the server's requests, never on elapsed time; where time matters the delivery
 * runs on a FakeClock.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Agent, Dispatcher } from 'undici';
import type http from 'node:http';
import { createDelivery, createMemoryOutbox, type DeliveryOptions } from '../src/delivery/delivery.ts';
import { createPool } from '../src/lib/http/pool.ts';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { batchIds, fakeDestination, refusedUrl, renderedItem, resultLog, startServer, WatchedClock, type ReceivedRequest, type TestServer } from '../src/delivery/test-helpers.ts';

let agent: Agent;
const servers: TestServer[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  agent = createPool('vendors', { connections: 8 });
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await agent.close();
});

const FAST_RETRY = { maxAttempts: 3, maxTotalMs: 5_000, baseDelayMs: 10, maxDelayMs: 50 };
const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

type Handler = (req: ReceivedRequest, res: http.ServerResponse, index: number) => void;

/** A local server whose arrivals can be waited on. */
async function server(handler: Handler = (_req, res) => res.end('ok')) {
  const waiters: { n: number; resolve: () => void }[] = [];
  const s = await startServer((req, res, index) => {
    handler(req, res, index);
    for (const w of waiters.filter((w) => index + 1 >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  servers.push(s);
  const received = (n: number): Promise<void> => (s.received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })));
  return { ...s, received: s.received, arrivals: received };
}

function setup(over: Partial<DeliveryOptions> = {}) {
  const log = resultLog();
  const outbox = createMemoryOutbox();
  const delivery = createDelivery({ agent, retry: FAST_RETRY, onResult: log.push, outbox, ...over });
  cleanups.push(() => delivery.close().catch(() => undefined));
  return { delivery, log, outbox };
}

describe('delivery over HTTP', () => {
  it('batches into a local server and reports each batch delivered', async () => {
    const s = await server();
    const dest = fakeDestination({ url: `${s.url}/collect`, limits: { maxEvents: 3, lingerMs: 10_000 } });
    const { delivery, log } = setup();
    for (const id of ids('e', 7)) expect(delivery.enqueue(dest, renderedItem(id))).toBe('queued');
    await delivery.flush(1_000);
    expect(s.received.map((r) => [r.method, r.url, r.headers['content-type']])).toEqual(Array(3).fill(['POST', '/collect', 'application/json']));
    expect(s.received.map((r) => batchIds(r.body))).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(log.of('delivered').map((r) => r.messageIds)).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(log.of('delivered')[0]).toMatchObject({ destinationId: 'fake', status: 200, attempt: 1 });
    expect(delivery.stats()).toEqual({ fake: { queued: 0, open: 0, ready: 0, inFlight: 0, awaitingRetry: 0 } });
  });

  it('keeps at most maxInFlight requests open on the wire', async () => {
    const held: http.ServerResponse[] = [];
    let open = 0;
    let peak = 0;
    const s = await server((_req, res) => {
      open += 1;
      peak = Math.max(peak, open);
      res.on('finish', () => (open -= 1));
      held.push(res);
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const { delivery, log } = setup({ destinations: { fake: { maxInFlight: 2 } } });
    for (const id of ids('c', 6)) delivery.enqueue(dest, renderedItem(id));
    await s.arrivals(2);
    expect(delivery.stats().fake).toMatchObject({ inFlight: 2, ready: 4 });
    // Answer each request as it comes: one slot frees, the next request arrives.
    for (let n = 2; n <= 6; n++) {
      held.shift()!.end('ok');
      if (n < 6) await s.arrivals(n + 1);
    }
    while (held.length > 0) held.shift()!.end('ok');
    await log.until((l) => l.of('delivered').length === 6);
    expect(peak).toBe(2);
  });

  it('retries a cut connection with the same request, then gives up after maxAttempts as a dead letter', async () => {
    const s = await server((_req, res) => {
      res.socket?.destroy();
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 } });
    const { delivery, log, outbox } = setup();
    delivery.enqueue(dest, renderedItem('n0'));
    await log.until((l) => l.of('failed').length === 1);
    expect(s.received).toHaveLength(3);
    expect(new Set(s.received.map((r) => r.body)).size).toBe(1);
    expect(log.of('retry_scheduled')).toHaveLength(2);
    expect(log.of('failed')[0]).toMatchObject({ reason: 'max_attempts', attempt: 3 });
    await delivery.flush(1_000);
    expect(outbox.entries).toEqual([expect.objectContaining({ destinationId: 'fake', messageIds: ['n0'], reason: 'gave_up:max_attempts', attempts: 3 })]);
  });

  it('honours Retry-After on the clock and resends the same batch with the same keys', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const s = await server((_req, res, i) => {
      if (i === 0) res.writeHead(503, { 'retry-after': '1' });
      res.end('ok');
    });
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 2 } });
    const { delivery, log } = setup({ clock });
    delivery.enqueue(dest, renderedItem('r0'));
    delivery.enqueue(dest, renderedItem('r1'));
    await log.until((l) => l.results.length === 1);
    expect(log.results[0]).toMatchObject({ outcome: 'retry_scheduled', status: 503, attempt: 1, reason: 'status_503' });
    expect(log.results[0]!.retryInMs).toBeGreaterThanOrEqual(1_000);
    clock.advance(log.results[0]!.retryInMs!);
    await log.until((l) => l.of('delivered').length === 1);
    expect(s.received).toHaveLength(2);
    expect(s.received[1]!.body).toBe(s.received[0]!.body);
    expect(log.of('delivered')[0]).toMatchObject({ status: 200, attempt: 2 });
  });

  it('does not retry a POST without an idempotency key after a bare 503, and retries one that never left', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const { delivery, log, outbox } = setup();
    delivery.enqueue(fakeDestination({ url: s.url, limits: { maxEvents: 1 }, idempotent: false }), renderedItem('p0'));
    delivery.enqueue(fakeDestination({ id: 'refused', url: await refusedUrl(), limits: { maxEvents: 1 }, idempotent: false }), renderedItem('r0'));
    await log.until((l) => l.of('failed').length === 2);
    expect(s.received).toHaveLength(1);
    expect(log.of('failed').find((r) => r.destinationId === 'fake')).toMatchObject({ messageIds: ['p0'], status: 503, reason: 'not_idempotent', attempt: 1 });
    expect(log.of('retry_scheduled').map((r) => r.reason)).toEqual(['network_ECONNREFUSED', 'network_ECONNREFUSED']);
    expect(log.of('failed').find((r) => r.destinationId === 'refused')).toMatchObject({ reason: 'max_attempts', attempt: 3 });
    await delivery.flush(1_000);
    expect(outbox.entries.map((e) => e.reason).sort()).toEqual(['gave_up:max_attempts', 'gave_up:not_idempotent']);
  });

  it("retries an error answer the template calls temporary (Meta's rate limits come as 400), and gives up on others", async () => {
    const s = await server((req, res, index) => {
      const limited = index === 0 || req.body.includes('"bad"');
      res.writeHead(limited ? 400 : 200, { 'content-type': 'application/json' });
      res.end(limited ? JSON.stringify({ error: { code: req.body.includes('"bad"') ? 100 : 4, message: 'x' } }) : '{}');
    });
    const transientResponse = (status: number, body: string): boolean => status === 400 && body.includes('"code":4');
    const dest = fakeDestination({ url: s.url, limits: { maxEvents: 1 }, transientResponse });
    const { delivery, log } = setup();
    delivery.enqueue(dest, renderedItem('t0'));
    await log.until((l) => l.of('delivered').length === 1);
    expect(log.of('retry_scheduled')[0]).toMatchObject({ status: 400, reason: 'status_400_transient' });
    delivery.enqueue(dest, renderedItem('bad'));
    await log.until((l) => l.of('failed').length === 1);
    expect(log.of('failed')[0]).toMatchObject({ messageIds: ['bad'], reason: 'status_400', attempt: 1 });
  });

  it('gives up at once on a permanent rejection, keeping a masked excerpt and no URL', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 400;
      res.end('{"error":"Invalid OAuth access token TOPSECRET"}');
    });
    const dest = fakeDestination({ url: `${s.url}/events?access_token=TOPSECRET`, limits: { maxEvents: 1 }, secretValues: ['TOPSECRET'] });
    const { delivery, log, outbox } = setup();
    delivery.enqueue(dest, renderedItem('x0'));
    await delivery.flush(1_000);
    expect(log.results).toEqual([expect.objectContaining({ outcome: 'failed', status: 400, reason: 'status_400', responseExcerpt: '{"error":"Invalid OAuth access token [secret]"}' })]);
    expect(JSON.stringify(log.results)).not.toContain('TOPSECRET');
    expect(JSON.stringify(log.results)).not.toContain(s.url);
    // The outbox keeps the full request: it must be able to resend it.
    expect(outbox.entries[0]!.request.url).toContain('access_token=TOPSECRET');
  });

  it('after the flush deadline, aborts what is in flight and parks it', async () => {
    const clock = new WatchedClock(Date.UTC(2026, 0, 1));
    const hang = await server(() => {
      // never answers
    });
    const dest = fakeDestination({ id: 'slow', url: hang.url, limits: { maxEvents: 1 } });
    const { delivery, log, outbox } = setup({ clock, defaults: { requestTimeoutMs: 60_000 } });
    delivery.enqueue(dest, renderedItem('h0'));
    await hang.arrivals(1);
    const armed = clock.nextTimer();
    const flushed = delivery.flush(200);
    await armed; // the flush's deadline timer
    clock.advance(200);
    await flushed;
    expect(log.of('parked').map((r) => r.messageIds)).toEqual([['h0']]);
    expect(outbox.entries).toEqual([expect.objectContaining({ destinationId: 'slow', messageIds: ['h0'], reason: 'shutdown', attempts: 1 })]);
  });
});

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

describe('delivery over HTTP: a Retry-After pauses the destination', () => {
  it('a 429 Retry-After: 5 on one batch: no request of that destination leaves before the window ends, another destination is not held', async () => {
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
    const { delivery, log } = setup({ agent: wire.dispatcher, clock, random: () => 0, retry: { ...FAST_RETRY, maxTotalMs: 60_000 } });

    delivery.enqueue(ga4, renderedItem('g0'));
    await log.until((l) => l.of('retry_scheduled').length === 1);
    expect(log.of('retry_scheduled')[0]).toMatchObject({ messageIds: ['g0'], status: 429, reason: 'status_429', retryInMs: 5_000 });
    for (const id of ['g1', 'g2', 'g3']) delivery.enqueue(ga4, renderedItem(id));
    delivery.enqueue(meta, renderedItem('m0'));
    await log.until((l) => l.of('delivered').length === 1);
    expect(log.of('delivered')[0]).toMatchObject({ destinationId: 'meta', messageIds: ['m0'] });

    // Straight to the end of the window: a request let out early would carry an earlier time.
    clock.advance(5_000);
    await log.until((l) => l.of('delivered').length === 5);
    expect(wire.startsTo(limited.url)).toEqual([t0, t0 + 5_000, t0 + 5_000, t0 + 5_000, t0 + 5_000]);
    expect(log.of('delivered').filter((r) => r.destinationId === 'ga4').map((r) => r.messageIds[0]).sort()).toEqual(['g0', 'g1', 'g2', 'g3']);
    expect(log.of('failed')).toEqual([]);
  });
});
