/**
 * createDelivery as a whole: the parts (batcher, scheduler, parker, lifecycle) wired together, on
 * a fake clock, against an undici MockAgent (no socket). Each part has its own unit tests; the
 * real HTTP path is covered by test/delivery-http.test.ts. Tests wait on results and promises only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MockAgent } from 'undici';
import { bodyText, type BoundDestination } from '../destinations/types.ts';
import { ConfigError } from '../errors.ts';
import { createDelivery, createMemoryOutbox, DEFAULT_DESTINATION_OPTIONS, DEFAULT_RETRY_POLICY, type DeliveryOptions, type Outbox } from './delivery.ts';
import { batchIds, fakeDestination, renderedItem, resultLog, WatchedClock, type FakeDestinationOptions } from './test-helpers.ts';

const ORIGIN = 'https://vendor.test';
const T0 = Date.UTC(2026, 0, 1);
const FAST_RETRY = { maxAttempts: 3, maxTotalMs: 60_000, baseDelayMs: 10, maxDelayMs: 50 };
const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A MockAgent vendor at ORIGIN recording each request's `{batch: [...]}` ids; `answer` decides. */
function vendor(answer: (ids: string[], index: number) => Answer = () => ({ status: 200 })) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const received: string[][] = [];
  agent
    .get(ORIGIN)
    .intercept({ path: () => true, method: () => true })
    .reply((opts) => {
      received.push(batchIds(typeof opts.body === 'string' ? opts.body : '{"batch":[]}'));
      const a = answer(received.at(-1)!, received.length - 1);
      return { statusCode: a.status, data: a.body ?? '', responseOptions: { headers: a.headers ?? {} } };
    })
    .persist();
  cleanups.push(() => agent.close());
  return { agent, received };
}

function setup(over: Partial<DeliveryOptions> & Pick<DeliveryOptions, 'agent'>) {
  const clock = new WatchedClock(T0);
  const log = resultLog();
  const outbox = createMemoryOutbox();
  const delivery = createDelivery({ clock, retry: FAST_RETRY, random: () => 0.5, onResult: log.push, outbox, ...over });
  cleanups.push(() => delivery.close().catch(() => undefined));
  return { clock, log, outbox, delivery };
}

const dest = (over: Partial<FakeDestinationOptions> = {}): BoundDestination => fakeDestination({ url: `${ORIGIN}/collect`, ...over });

describe('delivery: batching', () => {
  it('batches by count, sends the remainder on flush, reports each batch delivered', async () => {
    const { agent, received } = vendor();
    const { delivery, log } = setup({ agent });
    const d = dest({ limits: { maxEvents: 3, lingerMs: 10_000 } });
    for (const id of ids('e', 7)) expect(delivery.enqueue(d, renderedItem(id))).toBe('queued');
    await log.until((l) => l.of('delivered').length === 2);
    expect(delivery.stats().fake).toMatchObject({ queued: 1, open: 1 });
    await delivery.flush(1_000);
    expect(received).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(log.of('delivered').map((r) => r.messageIds)).toEqual(received);
    expect(log.of('delivered')[0]).toMatchObject({ destinationId: 'fake', status: 200, attempt: 1 });
    expect(delivery.stats()).toEqual({ fake: { queued: 0, open: 0, ready: 0, inFlight: 0, awaitingRetry: 0 } });
  });

  it('batches by bytes', async () => {
    const { agent, received } = vendor();
    const { delivery } = setup({ agent });
    const itemBytes = JSON.stringify(renderedItem('b0', { padBytes: 80 }).item).length;
    const d = dest({ limits: { maxEvents: 100, maxBytes: 2 * itemBytes + 1, lingerMs: 10_000 } });
    for (const id of ids('b', 5)) delivery.enqueue(d, renderedItem(id, { padBytes: 80 }));
    await delivery.flush(1_000);
    expect(received).toEqual([['b0', 'b1'], ['b2', 'b3'], ['b4']]);
  });

  it('sends a partial batch once lingerMs has passed since its first event', async () => {
    const { agent, received } = vendor();
    const { clock, delivery, log } = setup({ agent });
    const d = dest({ limits: { maxEvents: 100, lingerMs: 80 } });
    delivery.enqueue(d, renderedItem('l0'));
    clock.advance(30);
    delivery.enqueue(d, renderedItem('l1'));
    clock.advance(49);
    expect(delivery.stats().fake).toMatchObject({ open: 2, inFlight: 0 });
    clock.advance(1);
    expect(delivery.stats().fake).toMatchObject({ open: 0, inFlight: 1 });
    await log.until((l) => l.of('delivered').length === 1);
    expect(received).toEqual([['l0', 'l1']]);
  });

  it('refuses an item over maxBytes as a failed delivery, never sent', async () => {
    const { agent, received } = vendor();
    const { delivery, log } = setup({ agent });
    expect(delivery.enqueue(dest({ limits: { maxBytes: 50 } }), renderedItem('huge', { padBytes: 100 }))).toBe('item_too_large');
    await delivery.flush(500);
    expect(log.results).toEqual([{ destinationId: 'fake', messageIds: ['huge'], outcome: 'failed', attempt: 0, reason: 'item_too_large', error: { code: 'TW_ERR_RENDER', retryable: false }, durationMs: 0 }]);
    expect(received).toEqual([]);
  });

  it('refuses with queue_full beyond maxQueuedEvents, reports it, and accepts again once settled', async () => {
    const { agent } = vendor();
    const { delivery, log } = setup({ agent, defaults: { maxQueuedEvents: 2 } });
    const d = dest({ limits: { maxEvents: 10, lingerMs: 10_000 } });
    expect(delivery.enqueue(d, renderedItem('q0'))).toBe('queued');
    expect(delivery.enqueue(d, renderedItem('q1'))).toBe('queued');
    expect(delivery.enqueue(d, renderedItem('q2'))).toBe('queue_full');
    expect(log.of('failed')).toEqual([{ destinationId: 'fake', messageIds: ['q2'], outcome: 'failed', attempt: 0, reason: 'queue_full', error: { code: 'TW_ERR_UNAVAILABLE', retryable: true }, durationMs: 0 }]);
    await delivery.flush(1_000);
    expect(delivery.enqueue(d, renderedItem('q3'))).toBe('queued');
  });

  it("keeps at most the destination's maxInFlight requests open; an override applies to its destination only", async () => {
    const { agent } = vendor();
    const { delivery, log } = setup({ agent, destinations: { fake: { maxInFlight: 2 } } });
    const limited = dest({ limits: { maxEvents: 1 } });
    const other = dest({ id: 'other', limits: { maxEvents: 1 } });
    for (const id of ids('c', 6)) delivery.enqueue(limited, renderedItem(id));
    for (const id of ids('o', 6)) delivery.enqueue(other, renderedItem(id));
    expect(delivery.stats().fake).toMatchObject({ inFlight: 2, ready: 4 });
    expect(delivery.stats().other).toMatchObject({ inFlight: DEFAULT_DESTINATION_OPTIONS.maxInFlight, ready: 6 - DEFAULT_DESTINATION_OPTIONS.maxInFlight });
    await delivery.flush(1_000);
    expect(log.of('delivered')).toHaveLength(12);
  });
});

describe('delivery: retries and consent', () => {
  it('retries on the clock with the same request and reports each step', async () => {
    const { agent, received } = vendor((_ids, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
    const { clock, delivery, log } = setup({ agent });
    const d = dest({ limits: { maxEvents: 2 } });
    delivery.enqueue(d, renderedItem('r0'));
    delivery.enqueue(d, renderedItem('r1'));
    await log.until((l) => l.results.length === 1);
    expect(log.results[0]).toMatchObject({ outcome: 'retry_scheduled', status: 503, attempt: 1, reason: 'status_503', retryInMs: 1_000 });
    clock.advance(1_000);
    await log.until((l) => l.of('delivered').length === 1);
    expect(received).toEqual([['r0', 'r1'], ['r0', 'r1']]);
    expect(log.results.map((r) => [r.outcome, r.status, r.attempt])).toEqual([
      ['retry_scheduled', 503, 1],
      ['delivered', 200, 2],
    ]);
  });

  it('calls the recheck hook before the first send and drops what it leaves out', async () => {
    const { agent, received } = vendor();
    const asked: [string, string[]][] = [];
    const { delivery, log } = setup({
      agent,
      recheck: (destinationId, messageIds) => {
        asked.push([destinationId, messageIds]);
        return new Set(messageIds.filter((id) => id !== 'v1'));
      },
    });
    const d = dest({ limits: { maxEvents: 3 } });
    for (const id of ids('v', 3)) delivery.enqueue(d, renderedItem(id));
    await log.until((l) => l.of('delivered').length === 1);
    expect(asked).toEqual([['fake', ['v0', 'v1', 'v2']]]);
    expect(log.of('dropped')).toEqual([{ destinationId: 'fake', messageIds: ['v1'], outcome: 'dropped', attempt: 0, reason: 'consent_revoked_before_send', durationMs: 0 }]);
    expect(received).toEqual([['v0', 'v2']]);
    expect(delivery.stats().fake!.queued).toBe(0);
  });

  it('a Retry-After pauses its destination only, not another one', async () => {
    const { agent, received } = vendor((batch, i) => (i === 0 && batch[0] === 'g0' ? { status: 429, headers: { 'retry-after': '5' } } : { status: 200 }));
    const { clock, delivery, log } = setup({ agent, random: () => 0 });
    const ga4 = dest({ id: 'ga4', limits: { maxEvents: 1, lingerMs: 0 }, idempotent: false });
    const meta = dest({ id: 'meta', limits: { maxEvents: 1, lingerMs: 0 } });
    delivery.enqueue(ga4, renderedItem('g0'));
    await log.until((l) => l.of('retry_scheduled').length === 1);
    delivery.enqueue(ga4, renderedItem('g1'));
    delivery.enqueue(meta, renderedItem('m0'));
    await log.until((l) => l.of('delivered').length === 1);
    expect(log.of('delivered')[0]).toMatchObject({ destinationId: 'meta', messageIds: ['m0'] });
    expect(delivery.stats().ga4).toMatchObject({ ready: 1, inFlight: 0, awaitingRetry: 1 });
    clock.advance(5_000);
    await log.until((l) => l.of('delivered').length === 3);
    expect(received).toEqual([['g0'], ['m0'], ['g1'], ['g0']]);
  });
});

describe('delivery: flush, shutdown and the outbox', () => {
  it('parks at once a retry that cannot happen before the deadline, keeping its notBefore', async () => {
    const { agent } = vendor(() => ({ status: 503, headers: { 'retry-after': '3' } }));
    const { clock, delivery, log, outbox } = setup({ agent });
    delivery.enqueue(dest({ limits: { maxEvents: 1 } }), renderedItem('w0'));
    await log.until((l) => l.of('retry_scheduled').length === 1);
    // The clock never moves: the flush does not wait out the retry.
    await delivery.flush(2_000);
    expect(clock.now()).toBe(T0);
    expect(log.of('parked')).toEqual([expect.objectContaining({ messageIds: ['w0'], reason: 'shutdown', attempt: 1 })]);
    expect(outbox.entries).toEqual([expect.objectContaining({ reason: 'shutdown', attempts: 1, firstAttemptAt: T0, notBefore: T0 + 3_000, request: expect.objectContaining({ method: 'POST', url: `${ORIGIN}/collect` }) })]);
    expect(batchIds(bodyText(outbox.entries[0]!.request)!)).toEqual(['w0']);
  });

  it('waits for a retry due within the deadline', async () => {
    const { agent } = vendor((_ids, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
    const { clock, delivery, log, outbox } = setup({ agent });
    delivery.enqueue(dest({ limits: { maxEvents: 1 } }), renderedItem('w0'));
    await log.until((l) => l.of('retry_scheduled').length === 1);
    const armed = clock.nextTimer();
    const flushed = delivery.flush(2_000);
    await armed; // the flush's deadline timer: the flush is waiting
    clock.advance(1_000);
    await flushed;
    expect(log.of('delivered')).toHaveLength(1);
    expect(outbox.entries).toEqual([]);
  });

  it('flush parks at once what a pause holds past the budget, with the end of the pause as notBefore', async () => {
    const { agent, received } = vendor((_ids, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '30' } } : { status: 200 }));
    const { delivery, log, outbox } = setup({ agent, random: () => 0 });
    const d = dest({ limits: { maxEvents: 1, lingerMs: 0 }, idempotent: false });
    delivery.enqueue(d, renderedItem('p0'));
    await log.until((l) => l.of('retry_scheduled').length === 1);
    delivery.enqueue(d, renderedItem('p1'));
    await delivery.flush(1_000);
    expect(received).toHaveLength(1);
    expect(log.of('parked').map((r) => r.messageIds[0]).sort()).toEqual(['p0', 'p1']);
    expect(outbox.entries.map((e) => e.notBefore)).toEqual([T0 + 30_000, T0 + 30_000]);
  });

  it('close() parks pending batches without sending and refuses later events', async () => {
    const { agent, received } = vendor();
    const { delivery, log, outbox } = setup({ agent });
    const d = dest({ limits: { maxEvents: 10, lingerMs: 10_000 } });
    delivery.enqueue(d, renderedItem('s0'));
    delivery.enqueue(d, renderedItem('s1'));
    await delivery.close();
    expect(received).toEqual([]);
    expect(outbox.entries).toEqual([expect.objectContaining({ messageIds: ['s0', 's1'], reason: 'shutdown', attempts: 0 })]);
    expect(outbox.entries[0]!.firstAttemptAt).toBeUndefined();
    expect(log.of('parked')).toHaveLength(1);
    expect(delivery.enqueue(d, renderedItem('s2'))).toBe('closed');
    expect(log.of('failed')).toEqual([expect.objectContaining({ messageIds: ['s2'], reason: 'closed' })]);
  });

  it('reports (and rejects the close) when the outbox refuses, never dropping silently', async () => {
    const { agent } = vendor();
    const refusing: Outbox = { park: () => Promise.reject(new Error('disk full')) };
    const { delivery, log } = setup({ agent, outbox: refusing });
    delivery.enqueue(dest({ limits: { maxEvents: 10, lingerMs: 10_000 } }), renderedItem('o0'));
    await expect(delivery.close()).rejects.toThrow(/outbox refused/);
    expect(log.of('failed')).toEqual([expect.objectContaining({ messageIds: ['o0'], reason: 'outbox_park_failed' })]);
  });

  it('an onResult that throws does not break delivery', async () => {
    const { agent, received } = vendor();
    const { delivery } = setup({
      agent,
      onResult: () => {
        throw new Error('observer bug');
      },
    });
    expect(delivery.enqueue(dest({ limits: { maxEvents: 1 } }), renderedItem('t0'))).toBe('queued');
    await delivery.flush(1_000);
    expect(received).toEqual([['t0']]);
  });

  it('an enqueue that throws inside is reported internal_error, never thrown at the caller', () => {
    const { agent } = vendor();
    const { delivery, log } = setup({ agent });
    const broken = Object.defineProperty({ ...dest() }, 'limits', {
      get() {
        throw new Error('bad template');
      },
    });
    expect(delivery.enqueue(broken, renderedItem('i0'))).toBe('internal_error');
    expect(log.results).toEqual([{ destinationId: 'fake', messageIds: ['i0'], outcome: 'failed', attempt: 0, reason: 'internal_error', error: { code: 'TW_ERR_INTERNAL', retryable: false }, durationMs: 0 }]);
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
    expect(() => createDelivery({ agent: new MockAgent(), onResult: () => undefined, outbox: createMemoryOutbox(), ...over })).toThrow(ConfigError);
  });

  it('exports its defaults', () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({ maxAttempts: 6, maxTotalMs: 600_000, baseDelayMs: 500, maxDelayMs: 60_000 });
    expect(DEFAULT_DESTINATION_OPTIONS).toEqual({ requestTimeoutMs: 10_000, maxInFlight: 4, maxQueuedEvents: 10_000 });
  });
});
