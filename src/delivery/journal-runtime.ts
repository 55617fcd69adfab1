/**
 * The delivery journal at run time (issue 11; docs/delivery.md, "The journal"): what the app does
 * with the journal's store (src/store/journal.ts), writer and tracker between an accepted hit and
 * its last destination. It commits a request's hits before their answer (refusing them while a
 * destination cannot take more), turns delivery results into work rows, resumes unfinished hits
 * at start, takes over hits nobody holds, renews this instance's leases and purges old dead
 * letters. Every time and timer comes from the injected clock (the app's delivery clock), so its
 * tests drive it with a FakeClock; the store calls are awaited on the real event loop.
 *
 * It decides nothing itself: a hit to decide goes to `decide` (the app's deferred pipeline), a
 * resumed or requeued one to `process` (the pipeline, for only the destinations left). An event
 * the pipeline holds for consent is journaled as held until the hold's deadline; resumed, it is
 * decided again with no more than what is left of that hold (`holdUntil`).
 */
import { requestIdOf } from '../observability/request-id.ts';
import type { Logger } from 'pino';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import { UnavailableError, type TagwardenError } from '../errors.ts';
import type { Event } from '../ingest/event.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createRateLimitedLog } from '../observability/rate-limited-log.ts';
import type { Db } from '../store/db.ts';
import { claimLapsed, purgeDead, releaseLeases, renewLeases, type ClaimedHit } from '../store/journal.ts';
import { MAX_TIMER_MS, type Clock, type TimerHandle } from '../lib/clock.ts';
import { ENQUEUE_REFUSALS, type DeliveryResult } from './delivery.ts';
import { every, unrefTimer } from '../lib/every.ts';
import { decodeJournaledHit, encodeJournaledHit, type JournaledHit } from './journal-payload.ts';
import { createJournalTracker, type JournalTracker } from './journal-tracker.ts';
import { createTickSink, type TickSink } from './journal-tick-sink.ts';
import { createJournalWriter, type JournalWriter } from './journal-writer.ts';

/** How long a journaled event refused by a full destination queue waits before it is tried again. */
export const REQUEUE_MS = 1000;
/** Hits claimed per store round trip at start and at each takeover. */
const CLAIM_LIMIT = 500;
/** Dead-letter retention is checked at most this often. */
const PRUNE_EVERY_MS = 60_000;
const PRUNE_LIMIT = 10_000;

/** An accepted hit waiting for its decisions: the journaled event and signals, and its own consent. */
export interface HitToDecide extends JournaledHit {
  /** The hit's own consent, when resolved at the answer (for the visitor cookie). */
  requestConsent: ConsentState | undefined;
}

export interface JournalRuntimeOptions {
  db: Db;
  siteId: string;
  /** This instance's id in the journal's `owner` column. */
  owner: string;
  /** Every destination a new hit must be settled by. */
  destinationIds: readonly string[];
  journal: { leaseMs: number; maxEvents: number; maxBytes: number; windowMs: number; retryAfterS: number; deadRetentionMs: number };
  /** `delivery.maxQueuedEvents`: a destination queue this full refuses new hits (backpressure). */
  maxQueuedEvents: number;
  clock: Clock;
  log: Logger;
  metrics: Pick<Metrics, 'journalCommits' | 'journalHits' | 'eventsRejected' | 'eventsResumed'>;
  /**
   * Whether other instances may share the journal (default: on PostgreSQL; the app also sets it
   * for the workers of one host on a SQLite file, server.workers above 1). A sole owner (one
   * process on its SQLite file) does not renew leases, which rewrites every unfinished row: with
   * the journal full that held the event loop for seconds (docs/performance.md); it takes every
   * unfinished hit at start, and afterwards only released hits (replayed dead letters). A shared
   * journal's instance takes only lapsed leases, and releases its own at close.
   */
  shared?: boolean;
  /** Events a destination's delivery queue holds (`Delivery.queued`). */
  queued: (destinationId: string) => number;
  /** A committed hit, to be decided for every destination (the app defers it past the answer). */
  decide: (hit: HitToDecide) => void;
  /**
   * Decides an event again for `only` these destinations (consent included): resumed or requeued.
   * `holdUntil`: a resumed hold's deadline; the event may be held for consent until then, not
   * after (past it, it is dropped as `consent_unresolved`).
   */
  process: (event: Event, signals: RequestSignals, only: ReadonlySet<string>, holdUntil?: number) => void;
}

export interface JournalRuntime {
  /**
   * A request's accepted hits, made durable before its answer: committed (one group commit with
   * the other requests of this event-loop turn), then handed to `decide`, then `ok`. Refused with
   * `fail` (503 + Retry-After) when a destination's queue is full or the journal cannot take them.
   */
  commit(hits: readonly HitToDecide[], ok: () => void, fail: (err: TagwardenError) => void): void;
  /**
   * True for a delivery result that is no failure with the journal: a full queue refused an event
   * at enqueue, and the pipeline hands it back later (`requeue`). Not counted, not logged.
   */
  requeued(r: DeliveryResult): boolean;
  /** The journal's part of a delivery result: settle, dead letter or a retry's time. */
  onResult(r: DeliveryResult): void;
  /** The pipeline's enqueue succeeded: the delivery's results settle the event for `destinationId`. */
  enqueued(destinationId: string, event: Event): void;
  /** `destinationId` is done with the event without the delivery (policy, dry run, held and given up). */
  settle(event: Event, destinationId: string): void;
  /** The pipeline holds the event for these destinations until `deadline` (pending queue's clock), for `reason`. */
  held(event: Event, destinationIds: readonly string[], deadline: number, reason: string): void;
  /** A full queue refused the event: decided again (consent included) once it had time to drain. */
  requeue(event: Event, signals: RequestSignals, destinationId: string): void;
  /**
   * Takes back the unfinished hits (a sole owner every one; a shared journal those whose lease
   * lapsed or was released), resumes them, and starts renewing leases and taking over. Once,
   * before listening; resolves with the hits resumed.
   */
  recover(): Promise<number>;
  /** Takes over, now, hits nobody holds (a dead instance's, replayed dead letters). */
  takeOver(): void;
  /** Stops the timers, commits what is gathered and waits for the journal's writes. */
  close(): Promise<void>;
}

export function createJournalRuntime(o: JournalRuntimeOptions): JournalRuntime {
  const { db, clock, log, metrics, journal: cfg } = o;
  // Hits refused with 503 are logged like the routes' refusals: warn, 10 lines a minute per reason.
  const refusals = createRateLimitedLog({ log, maxPerInterval: 10, intervalMs: 60_000, clock });
  const writer: JournalWriter = createJournalWriter({
    db,
    owner: o.owner,
    leaseMs: cfg.leaseMs,
    maxHits: cfg.maxEvents,
    maxBytes: cfg.maxBytes,
    windowMs: cfg.windowMs,
    retryAfterS: cfg.retryAfterS,
    clock,
    onError: (what, err) => log.error({ err, what }, 'journal write failed'),
    onCommit: (n) => {
      metrics.journalCommits.inc();
      metrics.journalHits.inc(n);
    },
  });
  // The tracker writes per event; its writes of one tick share a transaction (journal-tick-sink.ts).
  const sink: TickSink = createTickSink({
    finish: (ids) => writer.finish(ids),
    putWork: (rows) => writer.putWork(rows),
    settleWork: (destinationId, ids) => writer.settleWork(destinationId, ids),
  });
  const tracker: JournalTracker = createJournalTracker(sink);
  /** Resumed hits waiting for their rows' time, and requeued events: cleared at close. */
  const timers = new Set<TimerHandle>();
  const stops: (() => void)[] = [];
  const shared = o.shared ?? db.engine === 'postgres';
  let prunedAt = 0;
  let closed = false;

  function later(ms: number, fn: () => void): void {
    // After close the pipeline is gone; what was left stays in the journal for the next start.
    if (closed) return;
    const handle = unrefTimer(
      clock.setTimeout(() => {
        timers.delete(handle);
        fn();
      }, Math.min(ms, MAX_TIMER_MS)),
    );
    timers.add(handle);
  }

  /**
   * One unfinished hit read back from the journal, decided again from its stored event and signals
   * (consent re-checked): for every destination when it was not tracked, else for the destinations
   * its work rows say are left: a waiting one not before its row's time (a Retry-After outlives a
   * restart), a held one at once, held no longer than its row's deadline (a restart never
   * extends a hold).
   */
  function resume(claimed: ClaimedHit): void {
    const { hit, work } = claimed;
    const stored = decodeJournaledHit(hit.payload);
    if (stored === undefined) {
      // Unreadable (never written by this version): let it go rather than claim it forever.
      log.error({ hitId: hit.id }, 'journal hit unreadable; dropped');
      writer.finish([hit.id]);
      return;
    }
    // Each destination handed to the pipeline here is decided (and counted) once more: counted as
    // resumed, so received + resumed = decisions + held still holds per destination.
    const resumed = (ids: Iterable<string>): void => {
      for (const id of ids) metrics.eventsResumed.inc({ destination: id });
    };
    if (!hit.tracked) {
      tracker.begin(stored.event, hit.id, o.destinationIds);
      resumed(o.destinationIds);
      o.decide({ event: stored.event, signals: stored.signals, requestConsent: undefined });
      return;
    }
    const known = new Set(o.destinationIds);
    const left = work.filter((w) => w.state !== 'dead' && known.has(w.destinationId));
    // Open here already (a replayed dead letter of a hit whose other destinations are still at work
    // in this instance): only the destinations not at work are started, or they would go twice.
    const reopened = tracker.reopen(hit.id, left.map((w) => w.destinationId), stored.event);
    if (reopened !== undefined) {
      resumed(reopened.added);
      if (reopened.added.length > 0) o.process(reopened.event, stored.signals, new Set(reopened.added));
      return;
    }
    const held = new Map(left.filter((w) => w.state === 'held').map((w) => [w.destinationId, w.notBefore]));
    tracker.begin(stored.event, hit.id, left.map((w) => w.destinationId), true, held);
    const runs = new Map<string, { at: number; holdUntil: number | undefined; only: Set<string> }>();
    for (const w of left) {
      const [key, at, holdUntil] = w.state === 'held' ? [`held ${w.notBefore}`, 0, w.notBefore] : [`at ${w.notBefore}`, w.notBefore, undefined];
      const run = runs.get(key) ?? { at, holdUntil, only: new Set<string>() };
      run.only.add(w.destinationId);
      runs.set(key, run);
    }
    for (const { at, holdUntil, only } of runs.values()) {
      resumed(only);
      const run = (): void => o.process(stored.event, stored.signals, only, holdUntil);
      const wait = at - clock.now();
      if (wait <= 0) run();
      else later(wait, run);
    }
  }

  async function recoverLapsed(all: boolean): Promise<number> {
    let resumed = 0;
    for (;;) {
      const at = clock.now();
      // A sole owner of its SQLite file: at start everything unfinished is this instance's.
      const claimed = await claimLapsed(db, { owner: o.owner, now: at, leaseUntil: at + cfg.leaseMs, limit: CLAIM_LIMIT, evenLive: all, onlyReleased: !all && !shared });
      for (const c of claimed) {
        writer.adopt(c.hit.id, c.hit.payload.length, false);
        resume(c);
      }
      resumed += claimed.length;
      if (claimed.length < CLAIM_LIMIT) break;
    }
    return resumed;
  }

  // While it runs, this instance renews the lease of the hits it holds, and takes over, every lease
  // period, hits nobody holds: on PostgreSQL those of instances that stopped renewing (a crash, a
  // SIGKILL); on both engines dead letters replayed by the CLI or the API.
  function takeOver(): void {
    if (closed) return;
    recoverLapsed(false)
      .then((n) => {
        if (n > 0) log.info({ hits: n }, 'journal: took over hits nobody held');
      })
      .catch((err: unknown) => log.error({ err }, 'journal takeover failed'));
  }

  // Retention: dead letters older than deadRetentionMs go, with their events (delivered events
  // leave the journal as soon as they are finished). Checked at most once a minute.
  function prune(): void {
    const now = clock.now();
    if (now - prunedAt < PRUNE_EVERY_MS) return;
    prunedAt = now;
    purgeDead(db, { siteId: o.siteId, before: now - cfg.deadRetentionMs, limit: PRUNE_LIMIT })
      .then((n) => {
        if (n > 0) log.info({ deadLetters: n }, 'journal: purged dead letters past their retention');
      })
      .catch((err: unknown) => log.error({ err }, 'journal retention purge failed'));
  }

  function startLeases(): void {
    if (shared) {
      stops.push(
        every(clock, Math.floor(cfg.leaseMs / 3), () => {
          renewLeases(db, o.owner, clock.now() + cfg.leaseMs).catch((err: unknown) => log.error({ err }, 'journal lease renewal failed'));
        }),
      );
    }
    stops.push(
      every(clock, cfg.leaseMs, () => {
        takeOver();
        prune();
      }),
    );
  }

  /** Results the pipeline settles itself (enqueue refused the event): another hit with the same messageId may be queued. */
  const refusedAtEnqueue = (r: DeliveryResult): boolean => r.attempt === 0 && r.outcome === 'failed' && ENQUEUE_REFUSALS.has(r.reason ?? '');

  return {
    commit(hits, ok, fail) {
      // Backpressure: a destination whose queue is full cannot take more now; the hit is refused
      // (503 + Retry-After) rather than acknowledged and left to wait without bound.
      for (const id of o.destinationIds) {
        if (o.queued(id) + hits.length > o.maxQueuedEvents) {
          metrics.eventsRejected.inc({ client: 'journal', code: 'TW_ERR_UNAVAILABLE' }, hits.length);
          refusals('warn', `journal:queue_full:${id}`, { requestId: requestIdOf(hits[0]?.event), client: 'journal', code: 'TW_ERR_UNAVAILABLE', reason: 'queue_full', destination: id, hits: hits.length, status: 503 }, 'hit refused');
          fail(new UnavailableError('a destination is catching up; retry later', { retryAfterS: cfg.retryAfterS }));
          return;
        }
      }
      writer.submit(
        hits.map((h) => ({ siteId: o.siteId, receivedAt: Date.parse(h.event.receivedAt), payload: encodeJournaledHit(h) })),
        (ids) => {
          hits.forEach((h, i) => {
            tracker.begin(h.event, ids[i]!, o.destinationIds);
            o.decide(h);
          });
          ok();
        },
        (err) => {
          metrics.eventsRejected.inc({ client: 'journal', code: err.code }, hits.length);
          refusals('warn', `journal:${err.code}`, { requestId: requestIdOf(hits[0]?.event), client: 'journal', code: err.code, reason: 'journal_unavailable', hits: hits.length, status: err.status }, 'hit refused');
          fail(err);
        },
      );
    },
    requeued(r) {
      return refusedAtEnqueue(r) && r.reason === 'queue_full';
    },
    onResult(r) {
      // Parked at shutdown is not finished: the hit stays in the journal and resumes after the restart.
      if (refusedAtEnqueue(r)) return;
      if (r.outcome === 'delivered' || r.outcome === 'dropped') {
        tracker.delivered(r.destinationId, r.messageIds);
        return;
      }
      const info = { at: clock.now(), attempts: r.attempt, reason: r.reason ?? null, code: r.error?.code ?? null, lastStatus: r.status ?? null, excerpt: r.responseExcerpt ?? null };
      // Given up: a dead letter, kept with its event (listed, replayed or purged later).
      if (r.outcome === 'failed') tracker.gaveUp(r.destinationId, r.messageIds, info);
      // A retry's time survives a restart: the resumed event waits for it (a Retry-After is never shortened).
      else if (r.outcome === 'retry_scheduled') tracker.retrying(r.destinationId, r.messageIds, info.at + (r.retryInMs ?? 0), info);
    },
    enqueued(destinationId, event) {
      tracker.enqueued(destinationId, event);
      tracker.decided(destinationId, event, clock.now());
    },
    settle(event, destinationId) {
      tracker.settle(event, destinationId);
    },
    held(event, destinationIds, deadline, reason) {
      tracker.held(event, destinationIds, deadline, { at: clock.now(), attempts: 0, reason, code: null, lastStatus: null, excerpt: null });
    },
    requeue(event, signals, destinationId) {
      tracker.decided(destinationId, event, clock.now());
      later(REQUEUE_MS, () => o.process(event, signals, new Set([destinationId])));
    },
    async recover() {
      const resumed = await recoverLapsed(!shared);
      startLeases();
      if (resumed > 0) log.info({ hits: resumed }, 'journal: resuming unfinished hits');
      return resumed;
    },
    takeOver,
    async close() {
      closed = true;
      for (const stop of stops.splice(0)) stop();
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      sink.flush();
      // Finished hits leave the journal; the rest stays for the next start.
      await writer.close();
      // Shared: what is left is released at once, so another instance (the worker replacing this
      // one in a rolling restart) takes it at its next takeover instead of after the lease.
      if (shared) await releaseLeases(db, o.owner, clock.now());
    },
  };
}
