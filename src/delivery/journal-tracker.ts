/**
 * Which journaled hits are finished, and what to write when one is not finishing at once.
 *
 * A hit leaves the journal once every destination has settled it: delivered, dropped by policy or
 * by the vendor's final answer. The pipeline says when a destination settles an event itself (a
 * policy drop, a dry run); the delivery says it through its results, by message id, which is why
 * the tracker remembers, per destination, which hit an enqueued message id belongs to.
 *
 * A destination that gives up on an event (a dead letter), or schedules a retry, makes the hit
 * *tracked* (src/store/journal.ts): a work row is written for that destination (dead, or waiting
 * until the retry's time, so a restart never brings a Retry-After forward), and, the first time,
 * a waiting row for each other destination not done with it yet, so that after a crash exactly
 * those are resumed. A tracked hit's later deliveries remove their rows.
 *
 * An event the pipeline holds for some destinations (consent unknown, `whenUnknown: hold`, the
 * upstream verify API asked or waited out) makes the hit tracked the same way, with a *held* row
 * per destination whose `notBefore` is the hold's deadline, so a restart resumes it with the hold
 * it had left, never a fresh one. Once decided, the row goes: settled, or replaced by a waiting
 * row when the event is handed to the delivery (or waits for room), then by a retry's waiting
 * row or a dead row as for any event.
 *
 * Plain bookkeeping, no I/O: the callbacks are the journal writer's. Bounded by what the journal holds.
 * It does not keep the event itself: the hit is found from the event only while the pipeline holds
 * it (a WeakMap), and from then on by message id. Holding every open event until its slowest
 * destination's batch was sent kept thousands of object graphs alive for each young-generation GC
 * to copy (docs/performance.md, "The delivery journal").
 */
import type { Event } from '../ingest/event.ts';
import type { WorkRow } from '../store/journal.ts';

export interface TrackerSink {
  /** Every destination settled these hits. */
  finish(hitIds: number[]): void;
  /** Work rows to write (the hits become tracked). */
  putWork(rows: WorkRow[]): void;
  /** A tracked hit's destination is done: its waiting row goes. */
  settleWork(destinationId: string, hitIds: number[]): void;
}

/** What a delivery result says about the attempt, for the work row. */
export interface AttemptInfo {
  at: number;
  attempts: number;
  reason: string | null;
  /** The result's error code (TW_ERR_*), kept on the row so a dead letter shows it. */
  code: string | null;
  lastStatus: number | null;
  excerpt: string | null;
}

export interface JournalTracker {
  /**
   * A committed (or resumed) hit: each of `destinationIds` must settle it before it is finished.
   * `held`: the destinations a resumed hit has held rows for, with their deadlines.
   */
  begin(event: Event, hitId: number, destinationIds: readonly string[], tracked?: boolean, held?: ReadonlyMap<string, number>): void;
  /** The pipeline holds the event for these destinations until `deadline`: held rows (unless written already). */
  held(event: Event, destinationIds: readonly string[], deadline: number, info: AttemptInfo): void;
  /**
   * `destinationId` decided to send the event (queued, or waiting for room): a held row it has
   * becomes a waiting row due at `at`, so that a restart does not hold it again.
   */
  decided(destinationId: string, event: Event, at: number): void;
  /** `destinationId` settled the event (no-op for an event not journaled). */
  settle(event: Event, destinationId: string): void;
  /** The event was handed to `destinationId`'s delivery: its results will settle it. */
  enqueued(destinationId: string, event: Event): void;
  /** Final delivery results (delivered, or dropped by a consent re-check) for these message ids. */
  delivered(destinationId: string, messageIds: readonly string[]): void;
  /** `destinationId` gave up on these message ids: dead letters. */
  gaveUp(destinationId: string, messageIds: readonly string[], info: AttemptInfo): void;
  /** `destinationId` will try these message ids again, not before `notBefore`. */
  retrying(destinationId: string, messageIds: readonly string[], notBefore: number, info: AttemptInfo): void;
  /**
   * The hit is open here already (a dead letter of it was replayed while its other destinations
   * are still at work in this instance): adds the destinations it is not waiting for yet and
   * returns them, with `event` (the stored event, from now on tracked as this hit), to be processed
   * for them; undefined when the hit is not open here.
   */
  reopen(hitId: number, destinationIds: readonly string[], event: Event): { event: Event; added: string[] } | undefined;
  /** Hits begun and not finished. */
  readonly open: number;
}

interface OpenHit {
  id: number;
  /** Destinations not done with it. */
  left: Set<string>;
  tracked: boolean;
  /** Destinations with a held row, and its deadline. */
  held: Map<string, number>;
}

export function createJournalTracker(sink: TrackerSink): JournalTracker {
  const hits = new WeakMap<Event, OpenHit>();
  const byId = new Map<number, OpenHit>();
  /**
   * Per destination, message id → the hit enqueued with it, or the hits in enqueue order when a
   * sender repeated a messageId. Keyed by the message id strings the events already hold: no
   * string is made per hit.
   */
  const queued = new Map<string, Map<string, OpenHit | OpenHit[]>>();
  const queueOf = (destinationId: string): Map<string, OpenHit | OpenHit[]> => {
    let q = queued.get(destinationId);
    if (q === undefined) {
      q = new Map();
      queued.set(destinationId, q);
    }
    return q;
  };
  /** The first hit queued with this message id, without taking it. */
  const peek = (destinationId: string, messageId: string): OpenHit | undefined => {
    const entry = queued.get(destinationId)?.get(messageId);
    return Array.isArray(entry) ? entry[0] : entry;
  };

  function done(hit: OpenHit, destinationId: string): void {
    if (!hit.left.delete(destinationId)) return;
    hit.held.delete(destinationId);
    if (hit.tracked) sink.settleWork(destinationId, [hit.id]);
    if (hit.left.size > 0) return;
    byId.delete(hit.id);
    sink.finish([hit.id]);
  }

  /** The hits of these message ids, each taken off the destination's queue. */
  function take(destinationId: string, messageIds: readonly string[]): OpenHit[] {
    const out: OpenHit[] = [];
    const q = queued.get(destinationId);
    if (q === undefined) return out;
    for (const messageId of messageIds) {
      const entry = q.get(messageId);
      if (entry === undefined) continue;
      if (!Array.isArray(entry)) {
        out.push(entry);
        q.delete(messageId);
        continue;
      }
      out.push(entry.shift()!);
      if (entry.length === 1) q.set(messageId, entry[0]!);
    }
    return out;
  }

  function row(hitId: number, destinationId: string, state: WorkRow['state'], notBefore: number, info: AttemptInfo): WorkRow {
    return { hitId, destinationId, state, notBefore, attempts: info.attempts, firstAttemptAt: null, reason: info.reason, code: info.code, lastStatus: info.lastStatus, excerpt: info.excerpt, updatedAt: info.at };
  }

  const none = (at: number): AttemptInfo => ({ at, attempts: 0, reason: null, code: null, lastStatus: null, excerpt: null });

  /** The rows of `own`'s destinations and, when the hit starts being tracked, waiting rows for the others left. */
  function track(hit: OpenHit, own: WorkRow[], at: number): WorkRow[] {
    const rows = [...own];
    if (!hit.tracked) {
      hit.tracked = true;
      const mine = new Set(own.map((r) => r.destinationId));
      for (const other of hit.left) if (!mine.has(other)) rows.push(row(hit.id, other, 'waiting', at, none(at)));
    }
    // A row that is not held replaces a held one.
    for (const r of own) if (r.state !== 'held') hit.held.delete(r.destinationId);
    return rows;
  }

  return {
    begin(event, hitId, destinationIds, tracked = false, held) {
      const hit: OpenHit = { id: hitId, left: new Set(destinationIds), tracked, held: new Map(held) };
      if (hit.left.size === 0) {
        sink.finish([hitId]);
        return;
      }
      hits.set(event, hit);
      byId.set(hitId, hit);
    },
    reopen(hitId, destinationIds, event) {
      const hit = byId.get(hitId);
      if (hit === undefined) return undefined;
      const added = destinationIds.filter((d) => !hit.left.has(d));
      for (const d of added) hit.left.add(d);
      hit.tracked = true;
      hits.set(event, hit);
      return { event, added };
    },
    held(event, destinationIds, deadline, info) {
      const hit = hits.get(event);
      if (hit === undefined) return;
      const own: WorkRow[] = [];
      for (const d of destinationIds) {
        // Written already with this deadline (a resumed hold, held again): nothing new to say.
        if (!hit.left.has(d) || hit.held.get(d) === deadline) continue;
        own.push(row(hit.id, d, 'held', deadline, info));
      }
      if (own.length === 0) return;
      const rows = track(hit, own, info.at);
      for (const r of own) hit.held.set(r.destinationId, deadline);
      sink.putWork(rows);
    },
    decided(destinationId, event, at) {
      const hit = hits.get(event);
      if (hit === undefined || !hit.held.has(destinationId) || !hit.left.has(destinationId)) return;
      sink.putWork(track(hit, [row(hit.id, destinationId, 'waiting', at, none(at))], at));
    },
    settle(event, destinationId) {
      const hit = hits.get(event);
      if (hit !== undefined) done(hit, destinationId);
    },
    enqueued(destinationId, event) {
      const hit = hits.get(event);
      if (hit === undefined) return;
      const q = queueOf(destinationId);
      const entry = q.get(event.messageId);
      if (entry === undefined) q.set(event.messageId, hit);
      else if (Array.isArray(entry)) entry.push(hit);
      else q.set(event.messageId, [entry, hit]);
    },
    delivered(destinationId, messageIds) {
      for (const hit of take(destinationId, messageIds)) done(hit, destinationId);
    },
    gaveUp(destinationId, messageIds, info) {
      const rows: WorkRow[] = [];
      const finished: number[] = [];
      for (const hit of take(destinationId, messageIds)) {
        if (!hit.left.has(destinationId)) continue;
        rows.push(...track(hit, [row(hit.id, destinationId, 'dead', info.at, info)], info.at));
        hit.left.delete(destinationId);
        if (hit.left.size === 0) {
          byId.delete(hit.id);
          finished.push(hit.id);
        }
      }
      // The rows first: a hit finished with a dead row keeps it (and its event) as a dead letter.
      if (rows.length > 0) sink.putWork(rows);
      if (finished.length > 0) sink.finish(finished);
    },
    retrying(destinationId, messageIds, notBefore, info) {
      const rows: WorkRow[] = [];
      for (const messageId of messageIds) {
        // Still queued (the retry keeps it in the delivery): look without taking.
        const hit = peek(destinationId, messageId);
        if (hit === undefined || !hit.left.has(destinationId)) continue;
        rows.push(...track(hit, [row(hit.id, destinationId, 'waiting', notBefore, info)], info.at));
      }
      if (rows.length > 0) sink.putWork(rows);
    },
    get open() {
      return byId.size;
    },
  };
}
