import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RequestSignals } from '../consent/signals.ts';
import { UnavailableError, type TagwardenError } from '../errors.ts';
import type { Event } from '../ingest/event.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { Db, Queryable } from '../store/db.ts';
import { appendHits, journalSize, putWork, type WorkRow } from '../store/journal.ts';
import { openDb } from '../store/open.ts';
import type { DeliveryResult } from './delivery.ts';
import { encodeJournaledHit } from './journal-payload.ts';
import { createJournalRuntime, REQUEUE_MS, type HitToDecide, type JournalRuntime, type JournalRuntimeOptions } from './journal-runtime.ts';
import { FakeClock } from '../lib/fake-clock.ts';

const T0 = 1_700_000_000_000;
const LEASE = 30_000;
const SIGNALS: RequestSignals = { gpc: false, visitor: { id: 'v1', source: 'body:anonymousId' } };
const event = (messageId: string): Event => ({
  messageId,
  type: 'track',
  event: 'Order Completed',
  timestamp: new Date(T0).toISOString(),
  receivedAt: new Date(T0).toISOString(),
  context: {},
  properties: {},
  traits: {},
  integrations: {},
});
const stored = (messageId: string) => ({ siteId: 'shop', receivedAt: T0, payload: encodeJournaledHit({ event: event(messageId), signals: SIGNALS }) });
const row = (hitId: number, destinationId: string, over: Partial<WorkRow>): WorkRow => ({
  hitId,
  destinationId,
  state: 'waiting',
  notBefore: T0,
  attempts: 1,
  firstAttemptAt: null,
  reason: null,
  code: null,
  lastStatus: null,
  excerpt: null,
  updatedAt: T0,
  ...over,
});
/** A result as delivery reports it: a failure or retry carries a code (here always retryable; the runtime only stores it). */
const result = (over: Partial<DeliveryResult> & Pick<DeliveryResult, 'destinationId' | 'messageIds' | 'outcome'>): DeliveryResult =>
  ({ attempt: 1, durationMs: 5, ...(over.outcome === 'failed' || over.outcome === 'retry_scheduled' ? { error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true } } : {}), ...over }) as DeliveryResult;

/**
 * The store calls of a Db, tracked so a test can wait until every write the runtime started has
 * landed (the runtime's own timers run on the FakeClock; the store's promises on the event loop).
 */
function observed(inner: Db): { db: Db; idle: () => Promise<void> } {
  const open = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    open.add(p);
    void p.finally(() => open.delete(p)).catch(() => undefined);
    return p;
  };
  const db: Db = {
    engine: inner.engine,
    all: (sql, params) => track(inner.all(sql, params)),
    get: (sql, params) => track(inner.get(sql, params)),
    run: (sql, params) => track(inner.run(sql, params)),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => track(inner.transaction(fn)),
    close: () => inner.close(),
  };
  return {
    db,
    // A turn of the event loop lets the writer's group commit start (setImmediate); then wait
    // for what is open, until a turn passes with nothing open.
    idle: async () => {
      for (let quiet = 0; quiet < 2; ) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (open.size === 0) quiet++;
        else {
          quiet = 0;
          await Promise.allSettled([...open]);
        }
      }
    },
  };
}

describe('journal runtime', () => {
  let inner: Db;
  let db: Db;
  let idle: () => Promise<void>;
  let clock: FakeClock;
  let decidedHits: HitToDecide[];
  const decided = (): string[] => decidedHits.map((h) => h.event.messageId);
  let processed: string[];
  let queued: number;
  let runtime: JournalRuntime | undefined;

  beforeEach(async () => {
    inner = await openDb('sqlite::memory:');
    ({ db, idle } = observed(inner));
    clock = new FakeClock(T0);
    decidedHits = [];
    processed = [];
    queued = 0;
  });
  afterEach(async () => {
    await runtime?.close();
    runtime = undefined;
    await inner.close();
  });

  function start(over: Partial<JournalRuntimeOptions> = {}): JournalRuntime {
    runtime = createJournalRuntime({
      db,
      siteId: 'shop',
      owner: 'me',
      destinationIds: ['ga4', 'meta'],
      journal: { leaseMs: LEASE, maxEvents: 1000, maxBytes: 1_000_000, windowMs: 0, retryAfterS: 5, deadRetentionMs: 86_400_000 },
      maxQueuedEvents: 10,
      clock,
      log: pino({ level: 'silent' }),
      metrics: createMetrics({ defaultMetrics: false }),
      queued: (id) => (id === 'ga4' ? queued : 0),
      decide: (h) => decidedHits.push(h),
      process: (e, _signals, only, holdUntil) =>
        processed.push(`${e.messageId}>${[...only].sort().join(',')}@${clock.now() - T0}${holdUntil === undefined ? '' : ` held until ${holdUntil - T0}`}`),
      ...over,
    });
    return runtime;
  }

  const commit = (rt: JournalRuntime, ids: string[]): Promise<void> =>
    new Promise((resolve, reject: (err: TagwardenError) => void) => {
      rt.commit(
        ids.map((id): HitToDecide => ({ event: event(id), signals: SIGNALS, requestConsent: undefined })),
        resolve,
        reject,
      );
    });

  const work = () => inner.all<{ hit_id: number; destination_id: string; state: string; not_before: number }>('SELECT hit_id, destination_id, state, not_before FROM journal_work ORDER BY hit_id, destination_id');
  const leases = async () => (await inner.all<{ owner: string; lease_until: number }>('SELECT owner, lease_until FROM journal_hits ORDER BY id')).map((r) => `${r.owner}@${Number(r.lease_until) - T0}`);

  it('commits a request before its answer and decides it; a full destination queue refuses it with 503 and Retry-After', async () => {
    const rt = start();
    await commit(rt, ['a', 'b']);
    expect(decided()).toEqual(['a', 'b']);
    expect((await journalSize(inner, 'shop')).hits).toBe(2);
    queued = 9;
    const err = await commit(rt, ['c', 'd']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).retryAfterS).toBe(5);
    expect(decided()).toEqual(['a', 'b']);
    expect((await journalSize(inner, 'shop')).hits).toBe(2);
  });

  it('resumes an untracked hit for every destination, and a waiting row not before its notBefore, and at it', async () => {
    const [plain, waiting, past] = await appendHits(inner, [stored('plain'), stored('waiting'), stored('past')], 'before-restart', T0 + 5_000);
    await putWork(inner, [
      row(waiting!, 'ga4', { notBefore: T0 + 4_000, reason: 'status_429' }),
      row(waiting!, 'meta', { state: 'dead', reason: 'status_400' }),
      row(past!, 'meta', { notBefore: T0 - 1 }),
    ]);
    const rt = start();
    expect(await rt.recover()).toBe(3);
    expect(decided()).toEqual(['plain']);
    expect(processed).toEqual(['past>meta@0']);
    clock.advance(3_999);
    expect(processed).toEqual(['past>meta@0']);
    clock.advance(1);
    // The dead row is not resumed: nothing is left to send for meta until a replay.
    expect(processed).toEqual(['past>meta@0', 'waiting>ga4@4000']);
    expect(plain).toBeDefined();
  });

  it('resumes a held row at once, with its deadline as the most the hold may last; a waiting row of the same hit at its time', async () => {
    const [h] = await appendHits(inner, [stored('held')], 'before-restart', T0);
    await putWork(inner, [row(h!, 'ga4', { state: 'held', notBefore: T0 + 20_000, reason: 'consent_resolving' }), row(h!, 'meta', { notBefore: T0 + 5_000 })]);
    const rt = start();
    await rt.recover();
    expect(processed).toEqual(['held>ga4@0 held until 20000']);
    clock.advance(5_000);
    expect(processed).toEqual(['held>ga4@0 held until 20000', 'held>meta@5000']);
  });

  it('a held event is journaled held until its deadline; handed to the delivery it becomes waiting; delivered, its row goes', async () => {
    const rt = start();
    await commit(rt, ['h']);
    const e = decidedHits[0]!.event;
    rt.held(e, ['ga4'], T0 + 30_000, 'consent_resolving');
    await idle();
    const rows = async () => (await work()).map((w) => `${w.destination_id}/${w.state}@${Number(w.not_before) - T0}`);
    expect(await rows()).toEqual(['ga4/held@30000', 'meta/waiting@0']);
    clock.advance(100);
    rt.enqueued('ga4', e);
    await idle();
    expect(await rows()).toEqual(['ga4/waiting@100', 'meta/waiting@0']);
    rt.onResult(result({ destinationId: 'ga4', messageIds: ['h'], outcome: 'delivered', status: 200 }));
    await idle();
    expect(await rows()).toEqual(['meta/waiting@0']);
  });

  it('a retry keeps its time in the journal: the waiting row is due at the clock time plus the retry delay', async () => {
    const rt = start();
    await commit(rt, ['r']);
    rt.enqueued('ga4', decidedHits[0]!.event);
    clock.advance(250);
    rt.onResult(result({ destinationId: 'ga4', messageIds: ['r'], outcome: 'retry_scheduled', status: 429, reason: 'status_429', retryInMs: 7_000 }));
    await idle();
    expect((await work()).map((w) => `${w.destination_id}/${w.state}@${Number(w.not_before) - T0}`)).toEqual(['ga4/waiting@7250', 'meta/waiting@250']);
  });

  it('shared (PostgreSQL): renews its leases every third of the lease, and takes over lapsed hits every lease period', async () => {
    const rt = start({ shared: true });
    await rt.recover();
    await commit(rt, ['mine']);
    await appendHits(inner, [stored('orphan')], 'dead-instance', T0 + 1_000);
    expect(await leases()).toEqual([`me@${LEASE}`, 'dead-instance@1000']);
    clock.advance(LEASE / 3);
    await idle();
    expect(await leases()).toEqual([`me@${LEASE / 3 + LEASE}`, 'dead-instance@1000']);
    clock.advance(LEASE - LEASE / 3 - 1);
    await idle();
    expect(decided()).toEqual(['mine']);
    clock.advance(1);
    await idle();
    // Lapsed at T0 + 1 s, taken over at the first lease period.
    expect(decided()).toEqual(['mine', 'orphan']);
    expect(await leases()).toEqual([`me@${2 * LEASE}`, `me@${2 * LEASE}`]);
  });

  it('sole owner (SQLite): renews no lease, and takes over only released hits (replayed dead letters)', async () => {
    const rt = start();
    await rt.recover();
    await commit(rt, ['mine']);
    // An owner other than this one cannot exist on a SQLite file this process holds; a released
    // hit (owner '') is what a replay leaves.
    const [released] = await appendHits(inner, [stored('replayed')], '', T0);
    expect(await leases()).toEqual([`me@${LEASE}`, '@0']);
    clock.advance(LEASE);
    await idle();
    // Nothing rewritten but the released hit, now this instance's; its own hit's lease untouched.
    expect(decided()).toEqual(['mine', 'replayed']);
    expect(await leases()).toEqual([`me@${LEASE}`, `me@${2 * LEASE}`]);
    expect(released).toBeGreaterThan(0);
    clock.advance(3 * LEASE);
    await idle();
    // Its own hit, long past its lease, is never taken over again (it would be sent twice).
    expect(decided()).toEqual(['mine', 'replayed']);
  });

  it('shared on a SQLite file (server.workers above 1): a start takes no live lease of another worker, a lapsed one at the takeover, and close releases its own', async () => {
    await appendHits(inner, [stored('other-live')], 'other-worker', T0 + LEASE);
    await appendHits(inner, [stored('other-lapsed')], 'crashed-worker', T0);
    const rt = start({ shared: true });
    // Not the other worker's live hit (a sole owner would take every unfinished one at start).
    expect(await rt.recover()).toBe(1);
    expect(decided()).toEqual(['other-lapsed']);
    await commit(rt, ['mine']);
    await idle();
    await rt.close();
    runtime = undefined;
    // What it still holds is released (lease ended now) for the next worker's takeover; the other worker's untouched.
    expect(await leases()).toEqual([`other-worker@${LEASE}`, 'me@0', 'me@0']);
  });

  it('purges dead letters past their retention on the takeover tick, at most once a minute', async () => {
    const rt = start();
    await rt.recover();
    const [old, young] = await appendHits(inner, [stored('old'), stored('young')], 'me', T0 + 10 * LEASE);
    const retention = 86_400_000;
    await putWork(inner, [row(old!, 'ga4', { state: 'dead', notBefore: T0 + LEASE - retention - 1 }), row(young!, 'ga4', { state: 'dead', notBefore: T0 })]);
    clock.advance(LEASE);
    await idle();
    expect((await journalSize(inner, 'shop')).dead).toBe(1);
    // Dies past the retention by the next tick, but the next purge is a minute after the last.
    await putWork(inner, [row(young!, 'meta', { state: 'dead', notBefore: T0 + 2 * LEASE - retention - 1 })]);
    clock.advance(LEASE);
    await idle();
    expect((await journalSize(inner, 'shop')).dead).toBe(2);
    clock.advance(LEASE);
    await idle();
    expect((await journalSize(inner, 'shop')).dead).toBe(1);
  });

  it('an event a full queue refused is decided again REQUEUE_MS later, for that destination only', () => {
    const rt = start();
    rt.requeue(event('q'), SIGNALS, 'meta');
    clock.advance(REQUEUE_MS - 1);
    expect(processed).toEqual([]);
    clock.advance(1);
    expect(processed).toEqual([`q>meta@${REQUEUE_MS}`]);
  });

  it('treats only a queue_full refusal at enqueue as requeued; other refusals and results are not', () => {
    const rt = start();
    expect(rt.requeued(result({ destinationId: 'ga4', messageIds: ['x'], outcome: 'failed', attempt: 0, reason: 'queue_full' }))).toBe(true);
    expect(rt.requeued(result({ destinationId: 'ga4', messageIds: ['x'], outcome: 'failed', attempt: 0, reason: 'item_too_large' }))).toBe(false);
    expect(rt.requeued(result({ destinationId: 'ga4', messageIds: ['x'], outcome: 'failed', attempt: 2, reason: 'queue_full' }))).toBe(false);
  });

  it('close stops every timer: nothing resumed, requeued, renewed or taken over after it', async () => {
    const [h] = await appendHits(inner, [stored('later')], 'before-restart', T0);
    await putWork(inner, [row(h!, 'ga4', { notBefore: T0 + 1_000 })]);
    const rt = start();
    await rt.recover();
    rt.requeue(event('q'), SIGNALS, 'meta');
    await appendHits(inner, [stored('orphan')], 'dead-instance', T0);
    await rt.close();
    runtime = undefined;
    expect(clock.pendingTimers).toBe(0);
    clock.advance(10 * LEASE);
    await idle();
    expect(processed).toEqual([]);
    expect(decided()).toEqual([]);
  });
});
