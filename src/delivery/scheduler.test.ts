import { describe, expect, it } from 'vitest';
import { bodyText, type BoundDestination } from '../destinations/types.ts';
import { createBatcher, type Batch } from './batcher.ts';
import type { OutboxEntry, OutboxReason } from './outbox.ts';
import type { LastExchange } from './result.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { createScheduler, type SchedulerOptions } from './scheduler.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { fakeDestination, fakeSender, renderedItem, resultLog, type FakeAnswer, type FakeCall } from './test-helpers.ts';

const T0 = Date.UTC(2026, 0, 1);
const POLICY: RetryPolicy = { maxAttempts: 3, maxTotalMs: 60_000, baseDelayMs: 1_000, maxDelayMs: 10_000 };
const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** A closed batch of these events, as the batcher hands it over. */
function batchOf(messageIds: string[]): Batch {
  let closed: Batch | undefined;
  const limits = { maxEvents: messageIds.length, maxBytes: 1_000_000, lingerMs: 60_000 };
  const batcher = createBatcher({ destinationId: 'fake', limits, maxQueuedEvents: 10_000, clock: new FakeClock(), onBatch: (b) => (closed = b) });
  for (const id of messageIds) batcher.add(renderedItem(id));
  return closed!;
}

interface Setup extends Partial<Omit<SchedulerOptions, 'clock'>> {
  vendor?: (call: FakeCall) => FakeAnswer | undefined;
}

function setup(over: Setup = {}) {
  const clock = new FakeClock(T0);
  const { vendor, ...rest } = over;
  const sender = fakeSender(clock, vendor);
  const log = resultLog();
  const parked: { entries: OutboxEntry[]; reason: OutboxReason; last?: LastExchange | undefined }[] = [];
  const state = { settled: 0, parking: false };
  // Resolves once `done` holds, looking again whenever the scheduler reports a change.
  const waiters: { done: () => boolean; resolve: () => void }[] = [];
  const when = (done: () => boolean): Promise<void> => (done() ? Promise.resolve() : new Promise((resolve) => waiters.push({ done, resolve })));
  const scheduler = createScheduler({
    destination: fakeDestination({ url: 'https://vendor.test/collect', idempotent: true }),
    maxInFlight: 2,
    requestTimeoutMs: 1_000,
    policy: POLICY,
    clock,
    random: () => 0.5,
    send: sender.send,
    report: log.push,
    settle: (n) => (state.settled += n),
    park: (entries, reason, last) => parked.push({ entries, reason, last }),
    parking: () => state.parking,
    onChange: () => {
      for (const w of waiters.filter((w) => w.done())) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    ...rest,
  });
  return { clock, sender, log, parked, state, scheduler, when };
}

const OK: FakeAnswer = { status: 200 };

describe('scheduler: dispatch', () => {
  it('sends at most maxInFlight requests at once, the rest waits ready in order', async () => {
    const { sender, log, state, scheduler } = setup();
    for (const id of ids('c', 5)) scheduler.submit(batchOf([id]));
    expect(sender.calls.map((c) => c.ids)).toEqual([['c0'], ['c1']]);
    expect(scheduler.stats()).toEqual({ ready: 3, inFlight: 2, awaitingRetry: 0 });

    sender.calls[1]!.answer(OK);
    await log.until((l) => l.of('delivered').length === 1);
    expect(sender.calls.map((c) => c.ids[0])).toEqual(['c0', 'c1', 'c2']);
    expect(sender.pending).toHaveLength(2);

    while (sender.pending.length > 0) {
      const delivered = log.of('delivered').length;
      sender.pending[0]!.answer(OK);
      await log.until((l) => l.of('delivered').length === delivered + 1);
    }
    expect(log.of('delivered').map((r) => r.messageIds[0]).sort()).toEqual(ids('c', 5));
    expect(log.of('delivered')[0]).toEqual({ destinationId: 'fake', messageIds: ['c1'], outcome: 'delivered', status: 200, attempt: 1, durationMs: 0 });
    expect(state.settled).toBe(5);
    expect(scheduler.busy).toBe(false);
    expect(scheduler.stats()).toEqual({ ready: 0, inFlight: 0, awaitingRetry: 0 });
  });

  it("passes the request budget and the destination's secrets and answer rules to the sender", () => {
    const dest = fakeDestination({ url: 'https://vendor.test/x?token=S3CRET', secretValues: ['S3CRET'], rejectsBatch: (s) => s === 400 });
    const { sender, scheduler } = setup({ destination: dest, requestTimeoutMs: 1_234 });
    scheduler.submit(batchOf(['a']));
    const { options, request } = sender.calls[0]!;
    expect(request.url).toBe('https://vendor.test/x?token=S3CRET');
    expect(options).toMatchObject({ timeoutMs: 1_234, secretValues: ['S3CRET'] });
    expect(options.rejectsBatch?.(400, '')).toBe(true);
    expect(options.isTransient?.(400, '')).toBe(false);
    expect(options.now?.()).toBe(T0);
  });

  it('a reloaded destination object serves the batches closed after it', () => {
    const { sender, scheduler } = setup();
    scheduler.submit(batchOf(['a']));
    scheduler.setDestination(fakeDestination({ url: 'https://vendor.test/v2' }));
    scheduler.submit(batchOf(['b']));
    expect(sender.calls.map((c) => c.request.url)).toEqual(['https://vendor.test/collect', 'https://vendor.test/v2']);
  });

  it("a template whose buildRequest throws fails the batch build_request_failed, never sent", () => {
    const broken: BoundDestination = {
      ...fakeDestination({ url: 'https://vendor.test/' }),
      buildRequest: () => {
        throw new Error('template bug');
      },
    };
    const { sender, log, state, scheduler } = setup({ destination: broken });
    scheduler.submit(batchOf(['a', 'b']));
    expect(sender.calls).toEqual([]);
    expect(log.results).toEqual([{ destinationId: 'fake', messageIds: ['a', 'b'], outcome: 'failed', attempt: 0, reason: 'build_request_failed', error: { code: 'TW_ERR_TEMPLATE', retryable: false }, durationMs: 0 }]);
    expect(state.settled).toBe(2);
  });

  it('a sender that rejects or throws is reported internal_error against the batch, never left in flight', async () => {
    let n = 0;
    const { log, state, scheduler } = setup({
      send: () => {
        n += 1;
        if (n === 1) return Promise.reject(new Error('bug'));
        throw new Error('sync bug');
      },
    });
    scheduler.submit(batchOf(['a']));
    scheduler.submit(batchOf(['b', 'c']));
    await log.until((l) => l.results.length === 2);
    expect(log.results.map((r) => [r.messageIds, r.outcome, r.reason, r.attempt])).toEqual([
      [['a'], 'failed', 'internal_error', 1],
      [['b', 'c'], 'failed', 'internal_error', 1],
    ]);
    expect(state.settled).toBe(3);
    expect(scheduler.busy).toBe(false);
  });
});

describe('scheduler: retries on the clock', () => {
  it('retries after the backoff with the same request (same items, same idempotency keys)', async () => {
    const { clock, sender, log, scheduler } = setup({ vendor: (c) => (sender.calls.indexOf(c) === 0 ? { status: 503 } : OK) });
    scheduler.submit(batchOf(['r0', 'r1']));
    await log.until((l) => l.results.length === 1);
    // Full jitter with random 0.5: half of baseDelayMs for the first retry.
    expect(log.results[0]).toEqual({ destinationId: 'fake', messageIds: ['r0', 'r1'], outcome: 'retry_scheduled', status: 503, attempt: 1, reason: 'status_503', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, retryInMs: 500, durationMs: 0 });
    expect(scheduler.stats()).toEqual({ ready: 0, inFlight: 0, awaitingRetry: 1 });
    expect(scheduler.busy).toBe(true);

    clock.advance(499);
    expect(sender.calls).toHaveLength(1);
    clock.advance(1);
    expect(sender.calls).toHaveLength(2);
    expect(sender.calls[1]!.at).toBe(T0 + 500);
    expect(bodyText(sender.calls[1]!.request)).toBe(bodyText(sender.calls[0]!.request));
    await log.until((l) => l.of('delivered').length === 1);
    expect(log.of('delivered')[0]).toMatchObject({ messageIds: ['r0', 'r1'], attempt: 2 });
  });

  it('honours a Retry-After: the retry waits at least its value', async () => {
    const { clock, sender, log, scheduler } = setup({ vendor: (c) => (sender.calls.indexOf(c) === 0 ? { status: 503, retryAfter: '1' } : OK) });
    scheduler.submit(batchOf(['r0']));
    await log.until((l) => l.results.length === 1);
    expect(log.results[0]).toMatchObject({ outcome: 'retry_scheduled', status: 503, reason: 'status_503', retryInMs: 1_000 });
    clock.advance(999);
    expect(sender.calls).toHaveLength(1);
    clock.advance(1);
    expect(sender.calls.map((c) => c.at)).toEqual([T0, T0 + 1_000]);
    await log.until((l) => l.of('delivered').length === 1);
  });

  it('gives up after maxAttempts and parks a dead letter with its attempts', async () => {
    const { clock, log, parked, scheduler } = setup({ vendor: () => ({ network: 'ECONNRESET' }) });
    scheduler.submit(batchOf(['n0']));
    for (let attempt = 1; attempt < POLICY.maxAttempts; attempt++) {
      await log.until((l) => l.of('retry_scheduled').length === attempt);
      clock.advance(log.results.at(-1)!.retryInMs!);
    }
    await log.until((l) => l.of('failed').length === 1);
    expect(log.results.map((r) => [r.outcome, r.reason, r.attempt])).toEqual([
      ['retry_scheduled', 'network_ECONNRESET', 1],
      ['retry_scheduled', 'network_ECONNRESET', 2],
      ['failed', 'max_attempts', 3],
    ]);
    expect(parked).toEqual([{ entries: [expect.objectContaining({ destinationId: 'fake', messageIds: ['n0'], reason: 'gave_up:max_attempts', code: 'TW_ERR_DELIVERY_RETRYABLE', attempts: 3, firstAttemptAt: T0 })], reason: 'gave_up:max_attempts', last: undefined }]);
  });

  it('a permanent answer gives up at once with its excerpt', async () => {
    const { log, parked, scheduler } = setup({ vendor: () => ({ status: 400, body: '{"error":"bad"}' }) });
    scheduler.submit(batchOf(['x0']));
    await log.until((l) => l.results.length === 1);
    expect(log.results).toEqual([{ destinationId: 'fake', messageIds: ['x0'], outcome: 'failed', status: 400, attempt: 1, reason: 'status_400', error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false }, responseExcerpt: '{"error":"bad"}', durationMs: 0 }]);
    expect(parked.map((p) => [p.reason, p.entries[0]!.code])).toEqual([['gave_up:status_400', 'TW_ERR_DELIVERY_REJECTED']]);
  });

  it('does not retry a keyless POST after a bare 503, retries it when it never left', async () => {
    const keyless = fakeDestination({ url: 'https://vendor.test/', idempotent: false });
    const { clock, log, scheduler } = setup({ destination: keyless, vendor: (c) => (c.ids[0] === 'p0' ? { status: 503 } : { network: 'ECONNREFUSED' }) });
    scheduler.submit(batchOf(['p0']));
    scheduler.submit(batchOf(['q0']));
    await log.until((l) => l.results.length === 2);
    expect(log.results.map((r) => [r.messageIds[0], r.outcome, r.reason])).toEqual([
      ['p0', 'failed', 'not_idempotent'],
      ['q0', 'retry_scheduled', 'network_ECONNREFUSED'],
    ]);
    clock.advance(log.results[1]!.retryInMs!);
    await log.until((l) => l.results.length === 3);
    expect(log.results[2]).toMatchObject({ messageIds: ['q0'], outcome: 'retry_scheduled', attempt: 2 });
  });

  it("retries an answer the template calls temporary (Meta's rate limit comes as a 400)", async () => {
    const dest = fakeDestination({ url: 'https://vendor.test/', transientResponse: (status, body) => status === 400 && body.includes('"code":4') });
    const { clock, sender, log, scheduler } = setup({ destination: dest, vendor: (c) => (sender.calls.indexOf(c) === 0 ? { status: 400, body: '{"error":{"code":4}}' } : OK) });
    scheduler.submit(batchOf(['t0']));
    await log.until((l) => l.results.length === 1);
    expect(log.results[0]).toMatchObject({ outcome: 'retry_scheduled', status: 400, reason: 'status_400_transient' });
    clock.advance(log.results[0]!.retryInMs!);
    await log.until((l) => l.of('delivered').length === 1);
  });
});

describe('scheduler: a Retry-After pauses the destination, not one batch', () => {
  it('no request inside the window, whichever batch; what waited goes out in order when it ends', async () => {
    // GA4's case: a POST without an idempotency key, refused with 429.
    const keyless = fakeDestination({ url: 'https://vendor.test/', idempotent: false });
    const { clock, sender, log, scheduler } = setup({ destination: keyless, random: () => 0, vendor: (c) => (sender.calls.indexOf(c) === 0 ? { status: 429, retryAfter: '5' } : OK) });
    scheduler.submit(batchOf(['g0']));
    await log.until((l) => l.results.length === 1);
    expect(log.results[0]).toMatchObject({ messageIds: ['g0'], outcome: 'retry_scheduled', status: 429, reason: 'status_429', retryInMs: 5_000 });

    for (const id of ['g1', 'g2', 'g3']) scheduler.submit(batchOf([id]));
    expect(scheduler.stats()).toEqual({ ready: 3, inFlight: 0, awaitingRetry: 1 });
    for (const step of [1_000, 2_000, 1_999]) {
      clock.advance(step);
      expect(sender.calls).toHaveLength(1);
    }
    clock.advance(1); // t0 + 5 s: the window is over; maxInFlight 2 lets two out at once
    expect(sender.calls.map((c) => [c.ids[0], c.at])).toEqual([['g0', T0], ['g1', T0 + 5_000], ['g2', T0 + 5_000]]);
    await log.until((l) => l.of('delivered').length === 4);
    expect(sender.calls.slice(1).map((c) => c.ids[0])).toEqual(['g1', 'g2', 'g3', 'g0']);
    expect(sender.calls.every((c, i) => i === 0 || c.at === T0 + 5_000)).toBe(true);
    expect(log.of('failed')).toEqual([]);
  });

  it('a batch due during the pause waits for its end; one due after keeps its own backoff', async () => {
    const seen = new Set<string>();
    const draws = [0.999, 0.1, 0];
    const { clock, sender, log, scheduler } = setup({
      maxInFlight: 4,
      // Base 10 s, attempt 1: c0's backoff is 9,990 ms (after the pause), b0's 1,000 ms (inside it), a0's 0 (its Retry-After rules).
      policy: { maxAttempts: 3, maxTotalMs: 60_000, baseDelayMs: 10_000, maxDelayMs: 60_000 },
      random: () => draws.shift() ?? 0,
      vendor: (c) => {
        const id = c.ids[0]!;
        const first = !seen.has(id);
        seen.add(id);
        if (first && id === 'a0') return { status: 429, retryAfter: '2' };
        return first ? { status: 503 } : OK;
      },
    });
    // a0 last: once it has its 429 no other request may start.
    for (const [i, id] of ['c0', 'b0', 'a0'].entries()) {
      scheduler.submit(batchOf([id]));
      await log.until((l) => l.of('retry_scheduled').length === i + 1);
    }
    expect(log.of('retry_scheduled').map((r) => [r.messageIds[0], r.retryInMs])).toEqual([['c0', 9_990], ['b0', 1_000], ['a0', 2_000]]);

    clock.advance(1_000); // b0 is due, the destination is paused
    expect(sender.calls).toHaveLength(3);
    expect(scheduler.stats()).toMatchObject({ ready: 1, awaitingRetry: 2 });

    clock.advance(1_000); // the pause is over: b0 and a0 go out
    await log.until((l) => l.of('delivered').length === 2);
    expect(log.of('delivered').map((r) => r.messageIds[0]).sort()).toEqual(['a0', 'b0']);

    clock.advance(7_989);
    expect(sender.calls).toHaveLength(5);
    clock.advance(1);
    await log.until((l) => l.of('delivered').length === 3);
    expect(sender.calls.map((c) => c.at)).toEqual([T0, T0, T0, T0 + 2_000, T0 + 2_000, T0 + 9_990]);
  });

  it('an absurd Retry-After pauses the destination for the retry window, not until restart', async () => {
    const { clock, sender, log, scheduler } = setup({ vendor: (c) => (sender.calls.indexOf(c) === 0 ? { status: 429, retryAfter: '9'.repeat(400) } : OK) });
    scheduler.submit(batchOf(['x0']));
    await log.until((l) => l.of('failed').length === 1);
    expect(log.of('failed')[0]).toMatchObject({ messageIds: ['x0'], reason: 'retry_after_beyond_deadline' });
    scheduler.submit(batchOf(['x1']));
    clock.advance(59_999);
    expect(sender.calls).toHaveLength(1);
    clock.advance(1);
    expect(sender.calls.map((c) => c.at)).toEqual([T0, T0 + 60_000]);
    await log.until((l) => l.of('delivered').length === 1);
  });

  it('close() drops the pause: nothing waits on its timer', async () => {
    const { clock, sender, log, scheduler } = setup({ vendor: () => ({ status: 429, retryAfter: '5' }), policy: { ...POLICY, maxAttempts: 1 } });
    scheduler.submit(batchOf(['x0']));
    await log.until((l) => l.of('failed').length === 1);
    scheduler.submit(batchOf(['x1']));
    scheduler.close();
    expect(clock.pendingTimers).toBe(0);
    expect(sender.calls).toHaveLength(1);
  });
});

describe('scheduler: consent re-checked before every send', () => {
  it('drops events revoked before the first send and before a retry, sends the rest', async () => {
    const asked: string[][] = [];
    const { clock, sender, log, state, scheduler } = setup({
      vendor: (c) => (sender.calls.indexOf(c) === 0 ? { status: 503 } : OK),
      recheck: (destinationId, messageIds) => {
        expect(destinationId).toBe('fake');
        asked.push(messageIds);
        // v3 revoked while the batch lingered; v1 by the time of the retry.
        return Promise.resolve(new Set(messageIds.filter((id) => id !== 'v3' && (asked.length === 1 || id !== 'v1'))));
      },
    });
    scheduler.submit(batchOf(ids('v', 4)));
    expect(scheduler.busy).toBe(true);
    expect(sender.calls).toEqual([]);
    await log.until((l) => l.of('retry_scheduled').length === 1);
    expect(log.results[0]).toEqual({ destinationId: 'fake', messageIds: ['v3'], outcome: 'dropped', attempt: 0, reason: 'consent_revoked_before_send', durationMs: 0 });
    expect(sender.calls[0]!.ids).toEqual(['v0', 'v1', 'v2']);

    clock.advance(log.of('retry_scheduled')[0]!.retryInMs!);
    await log.until((l) => l.of('delivered').length === 1);
    expect(asked).toEqual([ids('v', 4), ['v0', 'v1', 'v2']]);
    expect(log.of('dropped')[1]).toEqual({ destinationId: 'fake', messageIds: ['v1'], outcome: 'dropped', attempt: 1, reason: 'consent_revoked_before_retry', durationMs: 0 });
    expect(sender.calls[1]!.ids).toEqual(['v0', 'v2']);
    expect(log.of('delivered')[0]!.messageIds).toEqual(['v0', 'v2']);
    expect(state.settled).toBe(4);
  });

  it('sends nothing when every event was revoked', async () => {
    const { sender, log, state, scheduler } = setup({ recheck: () => new Set<string>() });
    scheduler.submit(batchOf(['a', 'b']));
    await log.until((l) => l.results.length === 1);
    expect(log.results).toMatchObject([{ messageIds: ['a', 'b'], outcome: 'dropped', reason: 'consent_revoked_before_send' }]);
    expect(sender.calls).toEqual([]);
    expect(state.settled).toBe(2);
    expect(scheduler.busy).toBe(false);
  });

  it('a re-check that fails dead-letters the batch unsent (recheck_failed)', async () => {
    const { sender, log, parked, scheduler } = setup({
      recheck: () => {
        throw new Error('consent store down');
      },
    });
    scheduler.submit(batchOf(['a']));
    await log.until((l) => l.results.length === 1);
    expect(log.results).toEqual([{ destinationId: 'fake', messageIds: ['a'], outcome: 'failed', attempt: 0, reason: 'recheck_failed', error: { code: 'TW_ERR_UNAVAILABLE', retryable: true }, durationMs: 0 }]);
    expect(parked.map((p) => [p.reason, p.entries.map((e) => e.messageIds)])).toEqual([['gave_up:recheck_failed', [['a']]]]);
    expect(sender.calls).toEqual([]);
    expect(scheduler.busy).toBe(false);
  });
});

describe('scheduler: a batch the vendor rejects whole is bisected', () => {
  const INVALID = '{"error":{"code":100,"message":"Invalid parameter"}}';
  const dest = fakeDestination({ url: 'https://vendor.test/', rejectsBatch: (status, body) => status === 400 && body.includes('"code":100') });
  /** Refuses, Meta's way, any request holding one of `bad`; accepts the rest. */
  const metaLike = (bad: ReadonlySet<string>, body = INVALID) => (c: FakeCall): FakeAnswer => (c.ids.some((id) => bad.has(id)) ? { status: 400, body } : OK);

  it('one bad event among 16: 2·log2(16) extra requests, the 15 others delivered once, the bad one failed with the vendor message', async () => {
    const { sender, log, parked, state, scheduler } = setup({ destination: dest, vendor: metaLike(new Set(['e5'])) });
    scheduler.submit(batchOf(ids('e', 16)));
    await log.until((l) => l.of('failed').length === 1 && l.of('delivered').length === 4);
    // The halves: [0,8) and [8,16), then [0,4) and [4,8), [4,6) and [6,8), [4] and [5].
    expect(sender.calls.map((c) => c.ids.length)).toEqual([16, 8, 8, 4, 4, 2, 2, 1, 1]);
    expect(log.of('delivered').flatMap((r) => r.messageIds).sort()).toEqual(ids('e', 16).filter((id) => id !== 'e5').sort());
    expect(log.of('failed')).toEqual([{ destinationId: 'fake', messageIds: ['e5'], outcome: 'failed', status: 400, attempt: 1, reason: 'status_400', error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false }, durationMs: 0, responseExcerpt: INVALID }]);
    expect(parked.map((p) => [p.entries[0]!.messageIds, p.reason])).toEqual([[['e5'], 'gave_up:status_400']]);
    expect(state.settled).toBe(15);
    expect(scheduler.busy).toBe(false);
  });

  it('two bad events in different halves: both isolated, the rest delivered', async () => {
    const { sender, log, scheduler } = setup({ destination: dest, vendor: metaLike(new Set(['f1', 'f6'])) });
    scheduler.submit(batchOf(ids('f', 8)));
    await log.until((l) => l.of('failed').length === 2 && l.of('delivered').flatMap((r) => r.messageIds).length === 6);
    expect(log.of('failed').map((r) => r.messageIds[0]).sort()).toEqual(['f1', 'f6']);
    expect(log.of('delivered').flatMap((r) => r.messageIds).sort()).toEqual(['f0', 'f2', 'f3', 'f4', 'f5', 'f7']);
    expect(sender.calls.length - 1).toBeLessThanOrEqual(2 * 2 * Math.log2(8));
  });

  it('the halves are consent re-checked before they go out (a revocation since is a drop before retry)', async () => {
    const asked: string[][] = [];
    const { sender, log, scheduler } = setup({
      destination: dest,
      vendor: metaLike(new Set(['r2'])),
      recheck: (_d, messageIds) => {
        asked.push(messageIds);
        return new Set(messageIds.filter((id) => asked.length === 1 || id !== 'r0'));
      },
    });
    scheduler.submit(batchOf(ids('r', 4)));
    await log.until((l) => l.of('failed').length === 1 && l.of('delivered').length === 2);
    expect(asked).toContainEqual(['r0', 'r1']);
    expect(log.of('dropped')).toMatchObject([{ messageIds: ['r0'], reason: 'consent_revoked_before_retry', attempt: 0 }]);
    expect(sender.calls.slice(1).flatMap((c) => c.ids)).not.toContain('r0');
    expect(log.of('delivered').flatMap((r) => r.messageIds).sort()).toEqual(['r1', 'r3']);
    expect(log.of('failed').map((r) => r.messageIds)).toEqual([['r2']]);
  });

  it("an error answer outside the template's rules (an expired token) gives the batch up whole, unsplit", async () => {
    const { sender, log, scheduler } = setup({ destination: dest, vendor: metaLike(new Set(['t0']), '{"error":{"code":190}}') });
    scheduler.submit(batchOf(ids('t', 4)));
    await log.until((l) => l.of('failed').length === 1);
    expect(log.of('failed')[0]).toMatchObject({ messageIds: ['t0', 't1', 't2', 't3'], reason: 'status_400' });
    expect(sender.calls).toHaveLength(1);
  });

  it('a vendor that rejects every request the same way costs the batch its budget, then the parts still rejected give up whole', async () => {
    const all = ids('w', 1000);
    const { sender, log, scheduler } = setup({ destination: dest, maxInFlight: 8, vendor: metaLike(new Set(all)) });
    scheduler.submit(batchOf(all));
    await log.until((l) => l.of('failed').reduce((n, r) => n + r.messageIds.length, 0) === 1000);
    // MAX_ISOLATED_PER_BATCH (8) invalid events' worth: 8 · 2 · ⌈log2 1000⌉ = 160 extra requests.
    expect(sender.calls).toHaveLength(1 + 160);
    const failed = log.of('failed').flatMap((r) => r.messageIds);
    expect(new Set(failed).size).toBe(1000);
    expect(failed).toHaveLength(1000);
    expect(log.of('delivered')).toEqual([]);
  });
});

describe('scheduler: parking', () => {
  it('parkWaiting parks what is ready or awaits a retry (keeping its due time) and aborts what is in flight', async () => {
    const { clock, sender, log, parked, state, scheduler, when } = setup({ maxInFlight: 1 });
    scheduler.submit(batchOf(['w0']));
    sender.calls[0]!.answer({ status: 503 });
    await log.until((l) => l.of('retry_scheduled').length === 1);
    const due = T0 + log.results[0]!.retryInMs!;
    scheduler.submit(batchOf(['h0'])); // in flight, held
    scheduler.submit(batchOf(['r0'])); // ready behind it
    expect(scheduler.stats()).toEqual({ ready: 1, inFlight: 1, awaitingRetry: 1 });

    state.parking = true;
    scheduler.parkWaiting();
    expect(parked).toHaveLength(1);
    expect(parked[0]!.reason).toBe('shutdown');
    expect(parked[0]!.entries.map((e) => [e.messageIds[0], e.attempts, e.notBefore, e.firstAttemptAt])).toEqual([
      ['r0', 0, undefined, undefined],
      ['w0', 1, due, T0],
    ]);
    expect(clock.pendingTimers).toBe(0); // the retry timer is cancelled

    // The aborted request comes back as ABORTED: parked too, after its exchange.
    await when(() => parked.length === 2);
    expect(parked[1]).toEqual({ entries: [expect.objectContaining({ messageIds: ['h0'], reason: 'shutdown', attempts: 1 })], reason: 'shutdown', last: { status: undefined, durationMs: 0 } });
    expect(scheduler.busy).toBe(false);
    expect(sender.calls).toHaveLength(2);
  });

  it('while parking, an answer that would be retried parks the batch with its retry time and the last status', async () => {
    const { log, sender, parked, state, scheduler, when } = setup();
    scheduler.submit(batchOf(['p0']));
    state.parking = true;
    sender.calls[0]!.answer({ status: 503, retryAfter: '3' });
    await when(() => parked.length === 1);
    expect(parked[0]).toEqual({ entries: [expect.objectContaining({ messageIds: ['p0'], attempts: 1, notBefore: T0 + 3_000 })], reason: 'shutdown', last: { status: 503, durationMs: 0 } });
    expect(log.results).toEqual([]);
  });

  it('while parking, a batch that closes is parked, not sent', () => {
    const { sender, parked, state, scheduler } = setup();
    state.parking = true;
    scheduler.submit(batchOf(['s0', 's1']));
    expect(sender.calls).toEqual([]);
    expect(parked).toMatchObject([{ reason: 'shutdown', entries: [{ messageIds: ['s0', 's1'], attempts: 0 }] }]);
    expect(parked[0]!.entries[0]!.firstAttemptAt).toBeUndefined();
  });

  it('parkLate parks the retries due after the deadline and, under a pause past it, the ready jobs with the pause end as notBefore', async () => {
    const keyless = fakeDestination({ url: 'https://vendor.test/', idempotent: false });
    const { sender, log, parked, scheduler } = setup({ destination: keyless, random: () => 0, vendor: (c) => (c.ids[0] === 'p0' ? { status: 429, retryAfter: '30' } : undefined) });
    scheduler.submit(batchOf(['p0']));
    await log.until((l) => l.of('retry_scheduled').length === 1);
    scheduler.submit(batchOf(['p1']));
    expect(scheduler.stats()).toEqual({ ready: 1, inFlight: 0, awaitingRetry: 1 });

    expect(scheduler.parkLate(T0 + 30_000)).toBe(false);
    expect(parked).toEqual([]);
    expect(scheduler.parkLate(T0 + 29_999)).toBe(true);
    expect(parked.flatMap((p) => p.entries.map((e) => [e.messageIds[0], e.notBefore]))).toEqual([
      ['p0', T0 + 30_000],
      ['p1', T0 + 30_000],
    ]);
    expect(scheduler.busy).toBe(false);
    expect(sender.calls).toHaveLength(1);
  });
});
