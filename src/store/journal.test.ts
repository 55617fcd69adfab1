import fc from 'fast-check';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import type { Db } from './db.ts';
import {
  appendHits,
  claimLapsed,
  finishHits,
  journalSize,
  listDead,
  purgeDead,
  putWork,
  renewLeases,
  replayDead,
  settleWork,
  type NewHit,
  type WorkRow,
} from './journal.ts';

const SITE = 'shop';
const hit = (n: number, over: Partial<NewHit> = {}): NewHit => ({ siteId: SITE, receivedAt: 1_000 + n, payload: JSON.stringify({ event: { messageId: `m-${n}` } }), ...over });
const work = (hitId: number, destinationId: string, over: Partial<WorkRow> = {}): WorkRow => ({
  hitId,
  destinationId,
  state: 'waiting',
  notBefore: 5_000,
  attempts: 1,
  firstAttemptAt: 2_000,
  reason: 'status_503',
  code: 'TW_ERR_DELIVERY_RETRYABLE',
  lastStatus: 503,
  excerpt: null,
  updatedAt: 2_000,
  ...over,
});

forEachEngine('delivery journal', (engine) => {
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('appends a group of hits in one commit and returns their ids in order', async () => {
    const ids = await appendHits(db, Array.from({ length: 450 }, (_, i) => hit(i)), 'a', 10_000);
    expect(ids).toHaveLength(450);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    expect(new Set(ids).size).toBe(450);
    const size = await journalSize(db, SITE);
    expect(size.hits).toBe(450);
    expect(size.bytes).toBe(Array.from({ length: 450 }, (_, i) => hit(i).payload.length).reduce((a, b) => a + b, 0));
    expect(await appendHits(db, [], 'a', 10_000)).toEqual([]);
  });

  it('each id is its own hit: claimed back, every id holds the payload appended at its place, after deletes of the newest rows too', async () => {
    const first = await appendHits(db, Array.from({ length: 250 }, (_, i) => hit(i)), 'a', 10_000);
    // The newest rows go: new ids still come after every id ever drawn, never reusing one.
    expect(await finishHits(db, first.slice(200), 'a')).toBe(50);
    const second = await appendHits(db, Array.from({ length: 30 }, (_, i) => hit(1000 + i)), 'a', 10_000);
    expect(Math.min(...second)).toBeGreaterThan(Math.max(...first));
    const expected = new Map([...first.slice(0, 200).map((id, i) => [id, hit(i).payload] as const), ...second.map((id, i) => [id, hit(1000 + i).payload] as const)]);
    const claimed = await claimLapsed(db, { owner: 'b', now: 20_000, leaseUntil: 30_000, limit: 1000 });
    expect(new Map(claimed.map((c) => [c.hit.id, c.hit.payload]))).toEqual(expected);
  });

  it('a hit finished by every destination is deleted; delivered rows do not accumulate', async () => {
    const [a, b, c] = await appendHits(db, [hit(1), hit(2), hit(3)], 'a', 10_000);
    await putWork(db, [work(b!, 'ga4'), work(b!, 'meta', { state: 'held', reason: 'consent_resolving' })]);
    // Untracked and tracked hits in one call, and an id finished already.
    expect(await finishHits(db, [a!, b!], 'a')).toBe(2);
    expect(await finishHits(db, [a!, c!], 'a')).toBe(1);
    expect(await journalSize(db, SITE)).toEqual({ hits: 0, bytes: 0, dead: 0 });
    expect(Number((await db.get<{ n: number | bigint }>('SELECT COUNT(*) AS n FROM journal_work'))!.n)).toBe(0);
  });

  it('a dead letter keeps its hit until it is replayed or purged', async () => {
    const [a] = await appendHits(db, [hit(1)], 'a', 10_000);
    await putWork(db, [work(a!, 'meta', { state: 'dead', notBefore: 3_000, reason: 'status_400', excerpt: 'x'.repeat(5000) })]);
    expect(await finishHits(db, [a!], 'a')).toBe(0);
    const dead = await listDead(db, { siteId: SITE });
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ hitId: a, destinationId: 'meta', state: 'dead', reason: 'status_400', lastStatus: 503, siteId: SITE, receivedAt: 1_001 });
    // Bounded whatever the caller passed.
    expect(dead[0]!.excerpt).toHaveLength(1024);
    expect((await journalSize(db, SITE)).dead).toBe(1);
    expect(await purgeDead(db, { siteId: SITE })).toBe(1);
    expect(await journalSize(db, SITE)).toEqual({ hits: 0, bytes: 0, dead: 0 });
  });

  it('filters dead letters by destination, time and reason', async () => {
    const ids = await appendHits(db, [hit(1), hit(2), hit(3)], 'a', 10_000);
    await putWork(db, [
      work(ids[0]!, 'meta', { state: 'dead', notBefore: 100, reason: 'status_400' }),
      work(ids[1]!, 'meta', { state: 'dead', notBefore: 200, reason: 'max_total_time' }),
      work(ids[2]!, 'ga4', { state: 'dead', notBefore: 300, reason: 'status_400' }),
      work(ids[2]!, 'meta', { state: 'waiting' }),
    ]);
    const pick = async (f: object) => (await listDead(db, { siteId: SITE, ...f })).map((d) => `${d.destinationId}:${d.hitId}`);
    expect(await pick({})).toEqual([`meta:${ids[0]}`, `meta:${ids[1]}`, `ga4:${ids[2]}`]);
    expect(await pick({ destinationId: 'meta' })).toEqual([`meta:${ids[0]}`, `meta:${ids[1]}`]);
    expect(await pick({ reason: 'status_400' })).toEqual([`meta:${ids[0]}`, `ga4:${ids[2]}`]);
    expect(await pick({ since: 150, before: 300 })).toEqual([`meta:${ids[1]}`]);
    expect(await pick({ limit: 1 })).toEqual([`meta:${ids[0]}`]);
    expect(await listDead(db, { siteId: 'other' })).toEqual([]);
  });

  it('a replay makes dead letters waiting again and lets their hits be claimed', async () => {
    const [a] = await appendHits(db, [hit(1)], 'a', 100_000);
    await putWork(db, [work(a!, 'meta', { state: 'dead', notBefore: 3_000, reason: 'status_400', attempts: 4 })]);
    // Only dead rows: nothing to send, so no claim takes it even once its lease lapses.
    expect(await claimLapsed(db, { owner: 'b', now: 200_000, leaseUntil: 300_000, limit: 10 })).toEqual([]);
    expect(await replayDead(db, { siteId: SITE, destinationId: 'meta' }, 50_000)).toBe(1);
    // Released: even the instance that wrote the dead row ('a') takes it on its next claim.
    const claimed = await claimLapsed(db, { owner: 'a', now: 50_000, leaseUntil: 60_000, limit: 10 });
    expect(claimed).toHaveLength(1);
    expect(claimed[0]!.work).toEqual([expect.objectContaining({ destinationId: 'meta', state: 'waiting', notBefore: 50_000, attempts: 0, reason: 'replayed', firstAttemptAt: null })]);
    expect(await listDead(db, { siteId: SITE })).toEqual([]);
  });

  it('replays or purges one dead letter by hit and destination, and the oldest deaths up to a limit', async () => {
    const ids = await appendHits(db, [hit(1), hit(2), hit(3)], 'a', 10_000);
    await putWork(db, [
      work(ids[0]!, 'meta', { state: 'dead', notBefore: 100, reason: 'status_400' }),
      work(ids[0]!, 'ga4', { state: 'dead', notBefore: 110, reason: 'status_400' }),
      work(ids[1]!, 'meta', { state: 'dead', notBefore: 200, reason: 'status_400' }),
      work(ids[2]!, 'meta', { state: 'dead', notBefore: 300, reason: 'status_400' }),
    ]);
    const left = async () => (await listDead(db, { siteId: SITE })).map((d) => `${d.destinationId}:${d.hitId}`);
    // Another site's id never matches, even with the right hit.
    expect(await replayDead(db, { siteId: 'other', hitId: ids[0]!, destinationId: 'meta' }, 50_000)).toBe(0);
    expect(await replayDead(db, { siteId: SITE, hitId: ids[0]!, destinationId: 'meta' }, 50_000)).toBe(1);
    expect(await left()).toEqual([`ga4:${ids[0]}`, `meta:${ids[1]}`, `meta:${ids[2]}`]);
    // Replayed once: it is no longer dead, so a second replay of it finds nothing.
    expect(await replayDead(db, { siteId: SITE, hitId: ids[0]!, destinationId: 'meta' }, 50_000)).toBe(0);
    expect((await claimLapsed(db, { owner: 'b', now: 50_000, leaseUntil: 60_000, limit: 10 }))[0]!.work.map((w) => `${w.destinationId}:${w.state}`)).toEqual(['ga4:dead', 'meta:waiting']);
    expect(await purgeDead(db, { siteId: SITE, destinationId: 'meta', limit: 1 })).toBe(1);
    expect(await left()).toEqual([`ga4:${ids[0]}`, `meta:${ids[2]}`]);
    expect(await purgeDead(db, { siteId: SITE, hitId: ids[2]! })).toBe(1);
    expect(await left()).toEqual([`ga4:${ids[0]}`]);
    // The purged hits are gone; the first stays (a dead row and a waiting one still refer to it).
    expect((await journalSize(db, SITE)).hits).toBe(1);
  });

  it("takes over lapsed hits with their work rows, never a live lease, each hit by one claimer", async () => {
    const ids = await appendHits(db, [hit(1), hit(2), hit(3)], 'dead-instance', 10_000);
    const live = await appendHits(db, [hit(4)], 'live-instance', 10_000);
    await putWork(db, [work(ids[1]!, 'ga4', { notBefore: 99_000 })]);
    expect(await renewLeases(db, 'live-instance', 50_000)).toBe(1);
    // Before the lease lapses nobody takes anything.
    expect(await claimLapsed(db, { owner: 'b', now: 9_999, leaseUntil: 40_000, limit: 10 })).toEqual([]);
    const first = await claimLapsed(db, { owner: 'b', now: 20_000, leaseUntil: 40_000, limit: 2 });
    const second = await claimLapsed(db, { owner: 'c', now: 20_000, leaseUntil: 40_000, limit: 10 });
    expect(first.map((c) => c.hit.id)).toEqual([ids[0], ids[1]]);
    expect(second.map((c) => c.hit.id)).toEqual([ids[2]]);
    expect(first[0]).toMatchObject({ hit: { owner: 'b', leaseUntil: 40_000, tracked: false, siteId: SITE, receivedAt: 1_001 }, work: [] });
    // A Retry-After survives the takeover: the row keeps its not_before.
    expect(first[1]!.hit.tracked).toBe(true);
    expect(first[1]!.work).toEqual([expect.objectContaining({ destinationId: 'ga4', notBefore: 99_000, attempts: 1, lastStatus: 503 })]);
    expect(JSON.parse(first[0]!.hit.payload)).toEqual({ event: { messageId: 'm-1' } });
    expect(live).toHaveLength(1);
    expect((await claimLapsed(db, { owner: 'd', now: 20_000, leaseUntil: 40_000, limit: 10 })).map((c) => c.hit.id)).toEqual([]);
  });

  it("never claims the claimer's own hits; evenLive takes other owners' live ones (a restart on SQLite)", async () => {
    const mine = await appendHits(db, [hit(1), hit(2)], 'me', 10_000);
    const old = await appendHits(db, [hit(3)], 'me-before-restart', 99_000);
    // Lapsed or not, mine stay mine: claiming them again would resume them twice.
    expect(await claimLapsed(db, { owner: 'me', now: 50_000, leaseUntil: 60_000, limit: 10 })).toEqual([]);
    expect((await claimLapsed(db, { owner: 'me', now: 50_000, leaseUntil: 60_000, limit: 10, evenLive: true })).map((c) => c.hit.id)).toEqual(old);
    // Claimed once: a second pass (the recovery loop's next page) finds nothing more.
    expect(await claimLapsed(db, { owner: 'me', now: 50_000, leaseUntil: 60_000, limit: 10, evenLive: true })).toEqual([]);
    expect(mine).toHaveLength(2);
  });

  it('a finish that comes after a replay of the hit leaves the replayed letter alone (regression: the replay was deleted)', async () => {
    const [a] = await appendHits(db, [hit(1)], 'a', 10_000);
    // meta gave up (a dead row) and ga4 is still at work; the dead letter is replayed before the
    // instance's finish for the hit arrives.
    await putWork(db, [work(a!, 'ga4'), work(a!, 'meta', { state: 'dead', reason: 'status_400' })]);
    expect(await replayDead(db, { siteId: SITE }, 5_000)).toBe(1);
    expect(await finishHits(db, [a!], 'a')).toBe(0);
    // Released to nobody: the next claim takes it, with the replayed row and ga4's row.
    const [claimed] = await claimLapsed(db, { owner: 'b', now: 20_000, leaseUntil: 30_000, limit: 10 });
    expect(claimed!.work.map((w) => [w.destinationId, w.state]).sort()).toEqual([['ga4', 'waiting'], ['meta', 'waiting']]);
    // Its new owner finishes it.
    expect(await finishHits(db, [a!], 'a')).toBe(0);
    expect(await finishHits(db, [a!], 'b')).toBe(1);
  });

  it('settles one destination of a tracked hit and keeps the others', async () => {
    const [a] = await appendHits(db, [hit(1)], 'a', 10_000);
    await putWork(db, [work(a!, 'ga4'), work(a!, 'meta')]);
    await settleWork(db, 'ga4', [a!]);
    const [claimed] = await claimLapsed(db, { owner: 'b', now: 20_000, leaseUntil: 30_000, limit: 10 });
    expect(claimed!.work.map((w) => w.destinationId)).toEqual(['meta']);
    await settleWork(db, 'meta', [a!]);
    // Tracked with no row left: every destination finished, so nothing is claimed.
    expect(await claimLapsed(db, { owner: 'c', now: 40_000, leaseUntil: 50_000, limit: 10 })).toEqual([]);
    expect(await finishHits(db, [a!], 'b')).toBe(1);
  });

  it('putWork replaces a row (a later attempt) rather than adding one', async () => {
    const [a] = await appendHits(db, [hit(1)], 'a', 10_000);
    await putWork(db, [work(a!, 'meta')]);
    await putWork(db, [work(a!, 'meta', { attempts: 2, notBefore: 9_000, reason: 'status_429', lastStatus: 429 })]);
    const [claimed] = await claimLapsed(db, { owner: 'b', now: 20_000, leaseUntil: 30_000, limit: 10 });
    expect(claimed!.work).toEqual([expect.objectContaining({ attempts: 2, notBefore: 9_000, reason: 'status_429', lastStatus: 429 })]);
  });

  it('holds exactly what was appended and not finished, for any sequence of appends and finishes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean()), { maxLength: 12 }), async (steps) => {
        const fresh = await engine.open();
        try {
          const open = new Set<number>();
          let n = 0;
          for (const [count, finishSome] of steps) {
            const ids = await appendHits(fresh, Array.from({ length: count }, () => hit(n++)), 'a', 10_000);
            for (const id of ids) open.add(id);
            if (finishSome && open.size > 0) {
              const done = [...open].filter((_, i) => i % 2 === 0);
              await finishHits(fresh, done, 'a');
              for (const id of done) open.delete(id);
            }
          }
          expect((await journalSize(fresh, SITE)).hits).toBe(open.size);
          const claimed = await claimLapsed(fresh, { owner: 'b', now: 20_000, leaseUntil: 30_000, limit: 1000 });
          expect(claimed.map((c) => c.hit.id).sort((x, y) => x - y)).toEqual([...open].sort((x, y) => x - y));
        } finally {
          await fresh.close();
        }
      }),
      { numRuns: engine.name === 'postgres' ? 8 : 40 },
    );
  });
});
