/**
 * Events waiting for a visitor's consent to become known (`whenUnknown: hold`). Bounded by count
 * and age: an event that cannot be kept or whose time runs out is dropped with the reason
 * `consent_unresolved`, never forwarded. The resolver that releases held events (consent store,
 * upstream verify) plugs into `take`.
 */
export interface PendingQueue<T> {
  /** False when the queue is full (count or bytes): the caller drops the item with `consent_unresolved`. */
  add(key: string, item: T, bytes?: number): boolean;
  /** Removes and returns every item held for a key (in arrival order). */
  take(key: string): T[];
  /**
   * Rewrites a key's items in place (each keeps its arrival time, so its age still counts from
   * when it was first held); an item mapped to undefined is removed. Returns how many remain.
   */
  retain(key: string, fn: (item: T) => T | undefined): number;
  /** True when items are held for the key. */
  has(key: string): boolean;
  /** Expires items older than the age limit; returns how many expired. */
  sweep(): number;
  /** Removes and returns everything (shutdown). */
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
  now: () => number;
  onExpire: (item: T) => void;
}

export function createPendingQueue<T>(opts: PendingOptions<T>): PendingQueue<T> {
  // A Map keeps insertion order per key; `order` keeps global arrival order for expiry.
  const byKey = new Map<string, { item: T; at: number; bytes: number }[]>();
  const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  let bytes = 0;
  const order: { key: string; at: number }[] = [];
  let size = 0;

  return {
    add(key, item, itemBytes = 0) {
      if (size >= opts.maxItems || bytes + itemBytes > maxBytes) return false;
      const at = opts.now();
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      list.push({ item, at, bytes: itemBytes });
      order.push({ key, at });
      size++;
      bytes += itemBytes;
      return true;
    },
    has(key) {
      return byKey.has(key);
    },
    retain(key, fn) {
      const list = byKey.get(key);
      if (list === undefined) return 0;
      // In place: called on every failed lookup of a waiting visitor, so no copy when nothing changes.
      // Removed items leave their entries in `order`; sweep skips those (as it does after `take`).
      let kept = 0;
      for (const e of list) {
        const item = fn(e.item);
        if (item === undefined) {
          size--;
          bytes -= e.bytes;
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
      size -= list.length;
      for (const e of list) bytes -= e.bytes;
      return list.map((e) => e.item);
    },
    sweep() {
      const cutoff = opts.now() - opts.maxAgeMs;
      let expired = 0;
      while (order.length > 0 && order[0]!.at <= cutoff) {
        const { key } = order.shift()!;
        const list = byKey.get(key);
        // The entry may already have been taken; then the list is gone or starts later.
        if (list === undefined || list[0] === undefined || list[0].at > cutoff) continue;
        const e = list.shift()!;
        if (list.length === 0) byKey.delete(key);
        size--;
        bytes -= e.bytes;
        expired++;
        opts.onExpire(e.item);
      }
      return expired;
    },
    drain() {
      const all = [...byKey.values()].flat().map((e) => e.item);
      byKey.clear();
      order.length = 0;
      size = 0;
      bytes = 0;
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
