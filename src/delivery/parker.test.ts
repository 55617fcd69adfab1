import { describe, expect, it } from 'vitest';
import { createMemoryOutbox, type Outbox, type OutboxEntry } from './outbox.ts';
import { createParker } from './parker.ts';
import type { DeliveryResult } from './result.ts';

function entry(messageIds: string[], over: Partial<OutboxEntry> = {}): OutboxEntry {
  return { destinationId: 'meta', messageIds, request: { method: 'POST', url: 'https://vendor.test/x', headers: {}, body: '{}' }, reason: 'shutdown', attempts: 1, parkedAt: 1_000, ...over };
}

/** An outbox whose park calls settle when the test says so. */
function heldOutbox(): Outbox & { calls: OutboxEntry[][]; resolve(i: number): void; reject(i: number, err: Error): void } {
  const calls: OutboxEntry[][] = [];
  const pending: { resolve: () => void; reject: (err: Error) => void }[] = [];
  return {
    calls,
    park(entries) {
      calls.push(entries);
      return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
    },
    resolve: (i) => pending[i]!.resolve(),
    reject: (i, err) => pending[i]!.reject(err),
  };
}

function setup(outbox: Outbox = createMemoryOutbox()) {
  const results: DeliveryResult[] = [];
  const settled: number[] = [];
  let onSettledCalls = 0;
  let wake: (() => void) | undefined;
  const parker = createParker({
    outbox,
    report: (r) => results.push(r),
    onSettled: () => {
      onSettledCalls += 1;
      wake?.();
    },
  });
  /** Resolves at the next onSettled. */
  const nextSettled = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  const settle = (count: number): void => {
    settled.push(count);
  };
  return { parker, results, settled, settle, nextSettled, settledCalls: () => onSettledCalls };
}

describe('parker', () => {
  it('parks a shutdown in one outbox call, then reports each entry parked with the last exchange and releases its events', async () => {
    const outbox = createMemoryOutbox();
    const { parker, results, settled, settle, nextSettled } = setup(outbox);
    const settledOnce = nextSettled();
    parker.park([entry(['a', 'b']), entry(['c'], { attempts: 0 })], 'shutdown', settle, { status: 503, durationMs: 12 });
    expect(parker.inFlight).toBe(1);
    expect(outbox.entries.map((e) => e.messageIds)).toEqual([['a', 'b'], ['c']]);
    expect(results).toEqual([]);
    await settledOnce;
    expect(parker.inFlight).toBe(0);
    expect(results).toEqual([
      { destinationId: 'meta', messageIds: ['a', 'b'], outcome: 'parked', attempt: 1, reason: 'shutdown', status: 503, durationMs: 12 },
      { destinationId: 'meta', messageIds: ['c'], outcome: 'parked', attempt: 0, reason: 'shutdown', status: 503, durationMs: 12 },
    ]);
    expect(settled).toEqual([2, 1]);
    expect(parker.takeErrors()).toEqual([]);
  });

  it('without a last exchange a parked result has no status and duration 0', async () => {
    const { parker, results, settle, nextSettled } = setup();
    const settledOnce = nextSettled();
    parker.park([entry(['a'])], 'shutdown', settle);
    await settledOnce;
    expect(results).toEqual([{ destinationId: 'meta', messageIds: ['a'], outcome: 'parked', attempt: 1, reason: 'shutdown', durationMs: 0 }]);
  });

  it('a dead letter is not reported again once parked (its failure was), but its events are released', async () => {
    const { parker, results, settled, settle, nextSettled } = setup();
    const settledOnce = nextSettled();
    parker.park([entry(['a', 'b'], { reason: 'gave_up:status_400' })], 'gave_up:status_400', settle);
    await settledOnce;
    expect(results).toEqual([]);
    expect(settled).toEqual([2]);
  });

  it('an outbox refusal reports every entry outbox_park_failed and is kept for the flush to reject with', async () => {
    const outbox = heldOutbox();
    const { parker, results, settled, settle, nextSettled } = setup(outbox);
    parker.park([entry(['a'])], 'shutdown', settle);
    parker.park([entry(['b'], { reason: 'gave_up:max_attempts', attempts: 6 })], 'gave_up:max_attempts', settle);
    expect(parker.inFlight).toBe(2);

    let settledOnce = nextSettled();
    outbox.reject(1, new Error('disk full'));
    await settledOnce;
    expect(parker.inFlight).toBe(1);
    expect(results).toEqual([{ destinationId: 'meta', messageIds: ['b'], outcome: 'failed', attempt: 6, reason: 'outbox_park_failed', error: { code: 'TW_ERR_UNAVAILABLE', retryable: true }, durationMs: 0 }]);

    settledOnce = nextSettled();
    outbox.resolve(0);
    await settledOnce;
    expect(parker.inFlight).toBe(0);
    expect(results.map((r) => [r.messageIds[0], r.outcome])).toEqual([['b', 'failed'], ['a', 'parked']]);
    expect(settled).toEqual([1, 1]);
    const errors = parker.takeErrors();
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('disk full');
    expect(parker.takeErrors()).toEqual([]);
  });

  it('an outbox that throws instead of rejecting is a refusal too', async () => {
    const { parker, results, settle, nextSettled } = setup({
      park: () => {
        throw new Error('not a promise');
      },
    });
    const settledOnce = nextSettled();
    parker.park([entry(['a'])], 'shutdown', settle);
    await settledOnce;
    expect(results).toMatchObject([{ messageIds: ['a'], outcome: 'failed', reason: 'outbox_park_failed' }]);
    expect(parker.takeErrors()).toHaveLength(1);
  });

  it('nothing to park: no outbox call, nothing in flight', () => {
    const outbox = heldOutbox();
    const { parker, settle, settledCalls } = setup(outbox);
    parker.park([], 'shutdown', settle);
    expect(outbox.calls).toEqual([]);
    expect(parker.inFlight).toBe(0);
    expect(settledCalls()).toBe(0);
  });
});
