import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBatcher, itemsJson, keepEntries, type Batch, type BatcherOptions } from './batcher.ts';
import { renderedItem } from './test-helpers.ts';

// {"id":"a","pad":""} is 19 bytes; each pad character adds one.
const ITEM_BYTES = JSON.stringify({ id: 'a', pad: '' }).length;

function setup(over: Partial<Omit<BatcherOptions, 'limits'>> & { limits?: Partial<BatcherOptions['limits']> } = {}) {
  const batches: Batch[] = [];
  const batcher = createBatcher({
    destinationId: 'd1',
    maxQueuedEvents: 1000,
    onBatch: (b) => batches.push(b),
    ...over,
    limits: { maxEvents: 3, maxBytes: 10_000, lingerMs: 100, ...over.limits },
  });
  const ids = () => batches.map((b) => b.entries.map((e) => e.messageId));
  return { batcher, batches, ids };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('batcher', () => {
  it('emits when maxEvents is reached, in arrival order, keeping idempotency keys', () => {
    const { batcher, batches, ids } = setup();
    for (const id of ['a', 'b', 'c', 'd']) expect(batcher.add(renderedItem(id, { idempotencyKey: `k-${id}` }))).toEqual({ accepted: true });
    expect(ids()).toEqual([['a', 'b', 'c']]);
    expect(batches[0]!.closedBy).toBe('max_events');
    expect(batches[0]!.entries.map((e) => e.idempotencyKey)).toEqual(['k-a', 'k-b', 'k-c']);
    expect(batches[0]!.destinationId).toBe('d1');
    expect(batcher.open).toBe(1);
    expect(batcher.queued).toBe(4);
  });

  it('groups by groupKey, each group with its own envelope and count', () => {
    const { batcher, batches, ids } = setup();
    batcher.add(renderedItem('a1', { groupKey: 'A' }));
    batcher.add(renderedItem('b1', { groupKey: 'B' }));
    batcher.add(renderedItem('a2', { groupKey: 'A' }));
    batcher.add(renderedItem('a3', { groupKey: 'A' }));
    expect(ids()).toEqual([['a1', 'a2', 'a3']]);
    expect(batches[0]!.envelope).toEqual({ group: 'A' });
    batcher.flushAll();
    expect(ids()).toEqual([['a1', 'a2', 'a3'], ['b1']]);
    expect(batches[1]!).toMatchObject({ groupKey: 'B', envelope: { group: 'B' }, closedBy: 'flush' });
  });

  it('closes the batch when the next item would exceed maxBytes (items + separators)', () => {
    // Two items of 19 bytes plus one comma = 39: fits exactly; a third would need 59.
    const { batcher, batches, ids } = setup({ limits: { maxEvents: 10, maxBytes: 2 * ITEM_BYTES + 1 } });
    batcher.add(renderedItem('a'));
    batcher.add(renderedItem('b'));
    expect(batches).toHaveLength(0);
    batcher.add(renderedItem('c'));
    expect(ids()).toEqual([['a', 'b']]);
    expect(batches[0]!).toMatchObject({ closedBy: 'max_bytes', bytes: 2 * ITEM_BYTES + 1 });
    batcher.flushAll();
    expect(ids()).toEqual([['a', 'b'], ['c']]);
  });

  it('rejects a single item over maxBytes and never emits it; an item of exactly maxBytes passes', () => {
    const { batcher, batches } = setup({ limits: { maxBytes: ITEM_BYTES + 5 } });
    // One-character ids, like ITEM_BYTES' "a": 19 + pad bytes.
    expect(batcher.add(renderedItem('B', { padBytes: 6 }))).toEqual({ accepted: false, reason: 'item_too_large' });
    expect(batcher.add(renderedItem('k', { padBytes: 5 }))).toEqual({ accepted: true });
    batcher.flushAll();
    expect(batches.flatMap((b) => b.entries.map((e) => e.messageId))).toEqual(['k']);
    expect(batcher.queued).toBe(1);
  });

  it('measures bytes as UTF-8, not UTF-16 code units', () => {
    const { batcher } = setup({ limits: { maxBytes: ITEM_BYTES + 4 } });
    // "€" is one UTF-16 unit but three UTF-8 bytes: 2 of them make 6 bytes > 4 spare.
    expect(batcher.add({ ...renderedItem('e'), item: { id: 'e', pad: '€€' } })).toEqual({ accepted: false, reason: 'item_too_large' });
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['a BigInt', { n: 1n }],
    ['a cycle', (() => { const o: Record<string, unknown> = {}; o.self = o; return o; })()],
  ])('refuses an item with no JSON form (%s)', (_name, item) => {
    const { batcher } = setup();
    expect(batcher.add({ ...renderedItem('x'), item })).toEqual({ accepted: false, reason: 'item_unserializable' });
  });

  it('emits after lingerMs from the first item, not reset by later items', () => {
    const { batcher, batches, ids } = setup({ limits: { maxEvents: 10, lingerMs: 100 } });
    batcher.add(renderedItem('a'));
    vi.advanceTimersByTime(60);
    batcher.add(renderedItem('b'));
    vi.advanceTimersByTime(39);
    expect(batches).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(ids()).toEqual([['a', 'b']]);
    expect(batches[0]!.closedBy).toBe('linger');
    // The next batch gets its own, fresh linger timer.
    batcher.add(renderedItem('c'));
    vi.advanceTimersByTime(100);
    expect(ids()).toEqual([['a', 'b'], ['c']]);
  });

  it('a batch closed by count cancels its linger timer', () => {
    const { batcher, batches } = setup({ limits: { maxEvents: 2, lingerMs: 100 } });
    batcher.add(renderedItem('a'));
    batcher.add(renderedItem('b'));
    vi.advanceTimersByTime(500);
    expect(batches).toHaveLength(1);
  });

  it('lingerMs 0 sends every event at once; maxEvents 1 never batches', () => {
    const zero = setup({ limits: { maxEvents: 10, lingerMs: 0 } });
    zero.batcher.add(renderedItem('a'));
    zero.batcher.add(renderedItem('b'));
    expect(zero.ids()).toEqual([['a'], ['b']]);
    const one = setup({ limits: { maxEvents: 1, lingerMs: 1000 } });
    one.batcher.add(renderedItem('a'));
    expect(one.ids()).toEqual([['a']]);
    expect(one.batches[0]!.closedBy).toBe('max_events');
  });

  it('uses an injected clock when given one', () => {
    const timers: { fn: () => void; ms: number }[] = [];
    const { batcher, batches } = setup({
      limits: { maxEvents: 10, lingerMs: 250 },
      clock: { now: () => 42, setTimeout: (fn, ms) => (timers.push({ fn, ms }), timers.length), clearTimeout: () => undefined },
    });
    batcher.add(renderedItem('a'));
    expect(timers).toEqual([{ fn: expect.any(Function), ms: 250 }]);
    timers[0]!.fn();
    expect(batches[0]!).toMatchObject({ openedAt: 42, closedBy: 'linger' });
  });

  describe('memory bound', () => {
    it('refuses with queue_full beyond maxQueuedEvents, counting emitted-but-unsettled events', () => {
      const { batcher, batches } = setup({ maxQueuedEvents: 4, limits: { maxEvents: 2 } });
      for (const id of ['a', 'b', 'c', 'd']) expect(batcher.add(renderedItem(id)).accepted).toBe(true);
      expect(batches).toHaveLength(2); // emitted, but not settled yet
      expect(batcher.add(renderedItem('e'))).toEqual({ accepted: false, reason: 'queue_full' });
      batcher.settle(2);
      expect(batcher.queued).toBe(2);
      expect(batcher.add(renderedItem('e'))).toEqual({ accepted: true });
      expect(batcher.add(renderedItem('f'))).toEqual({ accepted: true });
      expect(batcher.add(renderedItem('g'))).toEqual({ accepted: false, reason: 'queue_full' });
    });

    it('settle never drives the count negative', () => {
      const { batcher } = setup();
      batcher.settle(5);
      expect(batcher.queued).toBe(0);
    });
  });

  it('close cancels linger timers but keeps open batches for a final flushAll', () => {
    const { batcher, batches, ids } = setup({ limits: { maxEvents: 10 } });
    batcher.add(renderedItem('a'));
    batcher.close();
    vi.advanceTimersByTime(1000);
    expect(batches).toHaveLength(0);
    batcher.flushAll();
    expect(ids()).toEqual([['a']]);
  });
});

describe("a batch's JSON buffer", () => {
  it('holds exactly the items joined by commas, however it grew, and each item by itself', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 3 })), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 64, max: 4096 }),
        (specs, maxBytes) => {
          const batches: Batch[] = [];
          const batcher = createBatcher({ destinationId: 'd', maxQueuedEvents: 1000, onBatch: (b) => batches.push(b), limits: { maxEvents: 50, maxBytes, lingerMs: 0 } });
          const sent = new Map<string, string>();
          specs.forEach(([text, value], i) => {
            const item = { i, text, value };
            const r = batcher.add({ ok: true, groupKey: 'g', envelope: {}, item, messageId: `m${i}` });
            if (r.accepted) sent.set(`m${i}`, JSON.stringify(item));
          });
          batcher.flushAll();
          for (const b of batches) {
            const json = itemsJson(b);
            const expected = b.entries.map((e) => sent.get(e.messageId)!);
            expect(Buffer.from(json.joined).toString('utf8')).toBe(expected.join(','));
            expect(b.entries.map((_, k) => json.item(k))).toEqual(expected);
            expect(b.bytes).toBeLessThanOrEqual(maxBytes);
          }
        },
      ),
      { seed: 20261123 },
    );
  });

  it('grows past its first size (16 KiB) without losing what it held', () => {
    const { batcher, batches } = setup({ limits: { maxEvents: 100, maxBytes: 1_000_000 } });
    for (let i = 0; i < 40; i++) batcher.add(renderedItem(`m${i}`, { padBytes: 1000 }));
    batcher.flushAll();
    const json = itemsJson(batches[0]!);
    const items = JSON.parse(`[${Buffer.from(json.joined).toString()}]`) as { id: string }[];
    expect(items.map((x) => x.id)).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
  });

  it('keepEntries rebuilds the buffer for the events kept', () => {
    const { batcher, batches } = setup({ limits: { maxEvents: 10 } });
    for (const id of ['a', 'b', 'c', 'd']) batcher.add(renderedItem(id));
    batcher.flushAll();
    const kept = keepEntries(batches[0]!, (e) => e.messageId !== 'b' && e.messageId !== 'd');
    expect(kept.entries.map((e) => e.messageId)).toEqual(['a', 'c']);
    expect(Buffer.from(itemsJson(kept).joined).toString()).toBe(`${JSON.stringify({ id: 'a', pad: '' })},${JSON.stringify({ id: 'c', pad: '' })}`);
    expect(kept.bytes).toBe(2 * ITEM_BYTES + 1);
    expect(keepEntries(batches[0]!, () => false)).toMatchObject({ entries: [], bytes: 0 });
  });
});
