/**
 * Group commit of acknowledged hits into the delivery journal (src/store/journal.ts): a hit is
 * answered 2xx only once its row is committed. Every request submitted in the same event-loop turn
 * (or within `windowMs`, at most 2 ms) shares one transaction and one multi-row insert, so the
 * cost of a commit is spread over every hit of the turn. While one commit runs the next group
 * gathers; groups commit one after another, in order.
 *
 * Bounded: the hits and bytes the journal holds unfinished (counted here, from the store's own
 * count at start) may not pass `maxHits` / `maxBytes`. Beyond a bound a request is refused whole,
 * before anything of it is written: `UnavailableError` (503 with `Retry-After`), never an
 * acknowledgement of something that will not be delivered. A commit that fails refuses its
 * requests the same way.
 */
import { UnavailableError, type TagwardenError } from '../errors.ts';
import { appendHits, finishHits, putWork, settleWork, type NewHit, type WorkRow } from '../store/journal.ts';
import type { Db } from '../store/db.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

export interface JournalWriterOptions {
  db: Db;
  /** This instance's id: it holds the hits it answers until their lease lapses. */
  owner: string;
  leaseMs: number;
  maxHits: number;
  maxBytes: number;
  /** Extra wait for company before a commit (0: the end of the current event-loop turn). */
  windowMs: number;
  /** `Retry-After` (seconds) of a refusal. */
  retryAfterS: number;
  /** Lease times and the timer of `windowMs` (default the system clock). */
  clock?: Clock;
  /** What the store already holds unfinished (journalSize at start). */
  initial?: { hits: number; bytes: number };
  /** A group committed: how many hits it made durable (metrics). */
  onCommit?: (hits: number) => void;
  /** A failed commit or finish, for the log (no payload: it holds the event). */
  onError?: (what: 'append' | 'finish' | 'work', err: unknown) => void;
}

export interface JournalWriter {
  /**
   * Adds one request's hits to the next group commit. `done` gets their ids (in order) once
   * committed; `fail` gets the error when the request is refused (a bound, a failed commit, closed).
   * All of a request's hits or none.
   */
  submit(hits: readonly NewHit[], done: (ids: number[]) => void, fail: (err: TagwardenError) => void): void;
  /**
   * A hit taken over from the store (this instance's before a restart, or a dead instance's), so
   * that `finish` counts it out; `counted`: already part of `initial`.
   */
  adopt(id: number, payloadLength: number, counted: boolean): void;
  /** Every destination finished these hits: they leave the journal (batched, in the background). */
  finish(ids: readonly number[]): void;
  /** Writes work rows (tracked hits: dead letters, retries' times), in order with the other writes. */
  putWork(rows: readonly WorkRow[]): void;
  /** A tracked hit's destination is done: its row goes (in order with the other writes). */
  settleWork(destinationId: string, hitIds: readonly number[]): void;
  /** What the journal holds unfinished, as counted here. */
  readonly size: { hits: number; bytes: number };
  /** Commits what is gathered and waits for pending writes; later submits are refused. */
  close(): Promise<void>;
}

interface Pending {
  hits: readonly NewHit[];
  bytes: number;
  done: (ids: number[]) => void;
  fail: (err: TagwardenError) => void;
}

export function createJournalWriter(o: JournalWriterOptions): JournalWriter {
  const clock = o.clock ?? systemClock;
  let hits = o.initial?.hits ?? 0;
  let bytes = o.initial?.bytes ?? 0;
  /** Bytes of each open hit, for the count when it finishes. */
  const sizes = new Map<number, number>();
  let gathering: Pending[] = [];
  let scheduled = false;
  let chain: Promise<void> = Promise.resolve();
  let finishing: number[] = [];
  let finishScheduled = false;
  let closed = false;

  const refuse = (message: string, cause?: unknown): UnavailableError =>
    new UnavailableError(message, { retryAfterS: o.retryAfterS, ...(cause === undefined ? {} : { cause }) });

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    const run = (): void => {
      scheduled = false;
      const group = gathering;
      gathering = [];
      chain = chain.then(() => commit(group));
    };
    // "The same event-loop turn" is not a time: setImmediate runs once the poll phase has read
    // every request that was ready, so they all join this group. No clock models that (a fake one
    // would never fire it); only the extra `windowMs` is a time, on the injected clock.
    if (o.windowMs > 0) clock.setTimeout(run, o.windowMs);
    else setImmediate(run);
  }

  async function commit(group: Pending[]): Promise<void> {
    if (group.length === 0) return;
    const rows = group.flatMap((p) => p.hits);
    let ids: number[];
    try {
      ids = await appendHits(o.db, rows, o.owner, clock.now() + o.leaseMs);
    } catch (err) {
      o.onError?.('append', err);
      for (const p of group) {
        hits -= p.hits.length;
        bytes -= p.bytes;
        p.fail(refuse('the hit could not be made durable; retry later', err));
      }
      return;
    }
    o.onCommit?.(rows.length);
    let at = 0;
    for (const p of group) {
      const own = ids.slice(at, at + p.hits.length);
      own.forEach((id, i) => sizes.set(id, p.hits[i]!.payload.length));
      at += p.hits.length;
      p.done(own);
    }
  }

  function flushFinished(): void {
    finishScheduled = false;
    const ids = finishing;
    finishing = [];
    chain = chain.then(async () => {
      try {
        await finishHits(o.db, ids, o.owner);
      } catch (err) {
        // The rows stay: after a restart their events are sent again (at least once), never lost.
        o.onError?.('finish', err);
      }
    });
  }

  /** A write after those already queued (a finish must not overtake the dead row it keeps). */
  function then(write: () => Promise<void>): void {
    if (finishing.length > 0) flushFinished();
    chain = chain.then(async () => {
      try {
        await write();
      } catch (err) {
        // A lost work row costs precision, not events: the hit stays and is resumed whole.
        o.onError?.('work', err);
      }
    });
  }

  return {
    submit(newHits, done, fail) {
      if (closed) {
        fail(refuse('shutting down; retry on another instance'));
        return;
      }
      let size = 0;
      for (const h of newHits) size += h.payload.length;
      if (hits + newHits.length > o.maxHits || bytes + size > o.maxBytes) {
        fail(refuse(`the delivery journal is full (${hits} events, ${bytes} bytes unfinished); retry later`));
        return;
      }
      hits += newHits.length;
      bytes += size;
      gathering.push({ hits: newHits, bytes: size, done, fail });
      schedule();
    },
    adopt(id, payloadLength, counted) {
      if (sizes.has(id)) return;
      sizes.set(id, payloadLength);
      if (!counted) {
        hits += 1;
        bytes += payloadLength;
      }
    },
    finish(ids) {
      for (const id of ids) {
        const size = sizes.get(id);
        if (size === undefined) continue; // finished already, or never ours
        sizes.delete(id);
        hits -= 1;
        bytes -= size;
        finishing.push(id);
      }
      if (finishing.length > 0 && !finishScheduled) {
        finishScheduled = true;
        // The finishes of this event-loop turn share one write (a turn, not a time: see schedule).
        setImmediate(flushFinished);
      }
    },
    putWork(rows) {
      if (rows.length > 0) then(() => putWork(o.db, rows));
    },
    settleWork(destinationId, hitIds) {
      if (hitIds.length > 0) then(() => settleWork(o.db, destinationId, hitIds));
    },
    get size() {
      return { hits, bytes };
    },
    async close() {
      closed = true;
      // What is gathered still commits (its requests wait for it); then what finished is written.
      const group = gathering;
      gathering = [];
      chain = chain.then(() => commit(group));
      if (finishing.length > 0) flushFinished();
      await chain;
    },
  };
}
