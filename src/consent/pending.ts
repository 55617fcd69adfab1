/**
 * Events waiting for a visitor's consent to become known (`whenUnknown: hold`). Bounded by count,
 * bytes and time: an event that cannot be kept or whose time runs out is dropped with the reason
 * `consent_unresolved`, never forwarded. The resolver that releases held events (consent store,
 * upstream verify) plugs into `take`.
 *
 * Each item has its own deadline: `maxAgeMs` after it was added, or earlier when the caller says
 * so (a hold resumed from the delivery journal after a restart keeps the deadline it had before:
 * a restart never extends a hold). Items expire at their deadline, on a timer of the injected
 * clock armed for the earliest one.
 */
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { MAX_TIMER_MS } from '../lib/clock.ts';
import { unrefTimer } from '../lib/every.ts';

export interface PendingQueue<T> {
  /**
   * Holds the item until `deadline` (at most `maxAgeMs` from now; default exactly that) and
   * returns the deadline; undefined when refused: the queue is full (count or bytes) or the
   * deadline has passed. The caller drops a refused item with `consent_unresolved`.
   */
  add(key: string, item: T, bytes?: number, deadline?: number): number | undefined;
  /** Removes and returns every item held for a key (in arrival order). */
  take(key: string): T[];
  /**
   * Rewrites a key's items in place (each keeps its deadline, so its age still counts from when
   * it was first held); an item mapped to undefined is removed. Returns how many remain.
   */
  retain(key: string, fn: (item: T) => T | undefined): number;
  /** True when items are held for the key. */
  has(key: string): boolean;
  /** Expires the items whose deadline has come (the timer does it too); returns how many expired. */
  sweep(): number;
  /** Removes and returns everything (shutdown); the timer stops until the next add. */
  drain(): T[];
  readonly size: number;
  /** Sum of the `bytes` given for the items held. */
  readonly bytes: number;
}

export interface PendingOptions<T> {
  maxItems: number;
  /** Most bytes held (as estimated by the caller); unbounded when absent. */
  maxBytes?: number;
  maxAgeMs: number;
  /** Time, and the expiry timer (unref'd: held events alone do not keep a process alive). */
  clock: Clock;
  onExpire: (item: T) => void;
}

interface Entry<T> {
  key: string;
  item: T;
  deadline: number;
  /** Arrival order: items due at the same time expire in the order they came. */
  seq: number;
  bytes: number;
  /** Taken, removed or expired: its place in the heap is stale. */
  gone: boolean;
}

export function createPendingQueue<T>(opts: PendingOptions<T>): PendingQueue<T> {
  const { clock } = opts;
  const byKey = new Map<string, Entry<T>[]>();
  const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  /** A binary min-heap by (deadline, seq); entries taken meanwhile stay until they reach the top or a compaction. */
  let heap: Entry<T>[] = [];
  let bytes = 0;
  let size = 0;
  let seq = 0;
  let timer: TimerHandle | undefined;
  let timerAt = 0;

  const before = (a: Entry<T>, b: Entry<T>): boolean => a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  function up(i: number): void {
    const e = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = e;
  }
  function down(i: number): void {
    const e = heap[i]!;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && before(heap[l + 1]!, heap[l]!) ? l + 1 : l;
      if (!before(heap[c]!, e)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = e;
  }
  function pop(): void {
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      down(0);
    }
  }
  /** The earliest live entry, dropping stale ones from the top. */
  function first(): Entry<T> | undefined {
    while (heap.length > 0 && heap[0]!.gone) pop();
    return heap[0];
  }
  /** Stale entries (taken items) may not outnumber live ones without bound: rebuilt once they dominate. */
  function compact(): void {
    if (heap.length <= 2 * size + 1024) return;
    heap = heap.filter((e) => !e.gone);
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  }

  function disarm(): void {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
  }
  /** One timer, at the earliest deadline (a timer due earlier than needed just sweeps and re-arms). */
  function arm(): void {
    const e = first();
    if (e === undefined) return disarm();
    if (timer !== undefined && timerAt <= e.deadline) return;
    disarm();
    timerAt = e.deadline;
    timer = unrefTimer(
      clock.setTimeout(
        () => {
          timer = undefined;
          sweep();
        },
        Math.min(MAX_TIMER_MS, Math.max(0, e.deadline - clock.now())),
      ),
    );
  }

  function remove(e: Entry<T>): void {
    e.gone = true;
    size--;
    bytes -= e.bytes;
  }

  function sweep(): number {
    const now = clock.now();
    let expired = 0;
    for (let e = first(); e !== undefined && e.deadline <= now; e = first()) {
      pop();
      const list = byKey.get(e.key)!;
      list.splice(list.indexOf(e), 1);
      if (list.length === 0) byKey.delete(e.key);
      remove(e);
      expired++;
      opts.onExpire(e.item);
    }
    arm();
    return expired;
  }

  return {
    add(key, item, itemBytes = 0, deadline) {
      const now = clock.now();
      const due = Math.min(deadline ?? Number.POSITIVE_INFINITY, now + opts.maxAgeMs);
      if (due <= now || size >= opts.maxItems || bytes + itemBytes > maxBytes) return undefined;
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      const e: Entry<T> = { key, item, deadline: due, seq: seq++, bytes: itemBytes, gone: false };
      list.push(e);
      heap.push(e);
      up(heap.length - 1);
      size++;
      bytes += itemBytes;
      compact();
      arm();
      return due;
    },
    has(key) {
      return byKey.has(key);
    },
    retain(key, fn) {
      const list = byKey.get(key);
      if (list === undefined) return 0;
      // In place: called on every failed lookup of a waiting visitor, so no copy when nothing changes.
      let kept = 0;
      for (const e of list) {
        const item = fn(e.item);
        if (item === undefined) {
          remove(e);
          continue;
        }
        e.item = item;
        list[kept++] = e;
      }
      list.length = kept;
      if (kept === 0) byKey.delete(key);
      return kept;
    },
    take(key) {
      const list = byKey.get(key);
      if (list === undefined) return [];
      byKey.delete(key);
      for (const e of list) remove(e);
      return list.map((e) => e.item);
    },
    sweep,
    drain() {
      const all = [...byKey.values()].flat().map((e) => e.item);
      byKey.clear();
      heap = [];
      size = 0;
      bytes = 0;
      disarm();
      return all;
    },
    get size() {
      return size;
    },
    get bytes() {
      return bytes;
    },
  };
}
