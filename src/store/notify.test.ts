import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { forEachEngine } from '../../test/engines.ts';
import { verifyAuditChain, verifyAuditState } from './audit.ts';
import { createConsentStore } from './consent.ts';
import type { Db } from './db.ts';
import { startChangeFeed, type ChangeFeed } from './notify.ts';
import { openDb } from './open.ts';
import type { ConsentChange, ConsentInput, SubjectRef } from './types.ts';

function input(subject: SubjectRef, over: Partial<ConsentInput> = {}): ConsentInput {
  return { siteId: 'shop', subject, action: 'accept', item: 'analytics', consentAt: 1000, validUntil: null, source: 'push', valid: true, payloadHash: 'p'.repeat(64), ...over };
}

/** Resolves with the first notification matching `pred`, or rejects after `ms`. */
function waitFor(events: [string, string][], pred: (e: [string, string]) => boolean, ms: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const tick = setInterval(() => {
      if (events.some(pred)) {
        clearInterval(tick);
        resolve(Date.now() - started);
      } else if (Date.now() - started > ms) {
        clearInterval(tick);
        reject(new Error(`no notification within ${ms} ms (got ${JSON.stringify(events)})`));
      }
    }, 5);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

forEachEngine('change feed', (engine) => {
  const cleanup: (() => Promise<void>)[] = [];
  let db: Db;
  beforeEach(async () => {
    db = await engine.open();
    cleanup.push(() => db.close());
  });
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  });

  it('local invalidation: afterCommit gets every changed subject of the call, after commit', async () => {
    const seen: ConsentChange[][] = [];
    const s = createConsentStore(db, {
      afterCommit: (changes) => seen.push(changes),
    });
    await s.apply([input({ type: 'user', id: 'u' }, { links: [{ type: 'visitor', id: 'v' }] })]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.map((c) => `${c.subject.type}:${c.subject.id}`).sort()).toEqual(['user:u', 'visitor:v']);
    // Committed by then: a read from the handler's point of view sees the change.
    expect((await s.read('shop', { type: 'visitor', id: 'v' }))!.items.analytics!.status).toBe('granted');
  });

  if (engine.name === 'sqlite') {
    it('is a no-op on SQLite (one process: afterCommit is the invalidation)', async () => {
      const feed = await startChangeFeed(db, () => undefined);
      await feed.close();
    });
    return;
  }

  async function second(): Promise<Db> {
    const other = await openDb(engine.url());
    cleanup.push(() => other.close());
    return other;
  }

  async function feedOn(target: Db, events: [string, string][], opts: Parameters<typeof startChangeFeed>[2] = {}): Promise<ChangeFeed> {
    const feed = await startChangeFeed(target, (site, key) => events.push([site, key]), opts);
    cleanup.push(() => feed.close());
    return feed;
  }

  it('a change applied through one instance reaches the feed of another within 1 s, for every linked subject', async () => {
    const db2 = await second();
    const events: [string, string][] = [];
    await feedOn(db2, events);
    const s1 = createConsentStore(db);
    await s1.apply([input({ type: 'user', id: 'u1' }, { links: [{ type: 'visitor', id: 'v1' }] })]);
    const ms = await waitFor(events, ([site, key]) => site === 'shop' && key === 'visitor:v1', 1000);
    expect(ms).toBeLessThan(1000);
    await waitFor(events, ([, key]) => key === 'user:u1', 1000);
    // The second instance reads the new state straight from the database.
    expect((await createConsentStore(db2).read('shop', { type: 'visitor', id: 'v1' }))!.items.analytics!.status).toBe('granted');
  });

  it('no notification for a rolled-back write, a duplicate, or another schema on the same database', async () => {
    const db2 = await second();
    const events: [string, string][] = [];
    await feedOn(db2, events);
    const failing = createConsentStore(db, { onChange: () => Promise.reject(new Error('no')) });
    await expect(failing.apply([input({ type: 'visitor', id: 'rolled-back' })])).rejects.toThrow('no');
    const s1 = createConsentStore(db);
    await s1.apply([input({ type: 'visitor', id: 'once' })]);
    await waitFor(events, ([, key]) => key === 'visitor:once', 1000);
    events.length = 0;
    await s1.apply([input({ type: 'visitor', id: 'once' })]);
    const elsewhere = await engine.open();
    cleanup.push(() => elsewhere.close());
    await createConsentStore(elsewhere).apply([input({ type: 'visitor', id: 'other-schema' })]);
    // PostgreSQL delivers notifications in commit order: once a later write's has arrived, any
    // of the writes above would have arrived before it.
    await s1.apply([input({ type: 'visitor', id: 'marker' })]);
    await waitFor(events, ([, key]) => key === 'visitor:marker', 1000);
    expect(events).toEqual([['shop', 'visitor:marker']]);
  });

  it('reconnects after losing its connection and reports the gap (onReset) so caches can be dropped', async () => {
    const db2 = await second();
    const events: [string, string][] = [];
    let resets = 0;
    const applicationName = `tw-feed-${randomBytes(4).toString('hex')}`;
    await feedOn(db2, events, { applicationName, retryMs: 50, onReset: () => resets++ });
    const killed = await db.all<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = ?', [applicationName]);
    expect(killed).toHaveLength(1);
    const until = Date.now() + 5000;
    while (resets === 0 && Date.now() < until) await sleep(20);
    expect(resets).toBe(1);
    await createConsentStore(db).apply([input({ type: 'visitor', id: 'after-reconnect' })]);
    await waitFor(events, ([, key]) => key === 'visitor:after-reconnect', 1000);
  });

  it('concurrent applies through two instances keep ONE valid chain', async () => {
    const db2 = await second();
    const s1 = createConsentStore(db);
    const s2 = createConsentStore(db2);
    const calls = Array.from({ length: 30 }, (_, k) =>
      (k % 2 === 0 ? s1 : s2).apply([
        input({ type: 'visitor', id: `c${k}` }, { consentAt: 1000 + k }),
        // The same subject from both instances: the merge and version bumps race too.
        input({ type: 'user', id: 'shared' }, { consentAt: 1000 + k, item: `i${k}`, links: [{ type: 'visitor', id: `c${k}` }] }),
      ]),
    );
    const outcomes = (await Promise.all(calls)).flat();
    expect(outcomes.every((o) => !o.duplicate && o.applied)).toBe(true);
    // 60 inputs and the 30 links they made (links are audited: src/store/replay.ts replays them).
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 90 });
    expect(await verifyAuditState(db)).toMatchObject({ ok: true, rows: 90 });
    const shared = (await s2.read('shop', { type: 'user', id: 'shared' }))!;
    expect(shared.linked).toHaveLength(31);
    expect(Object.keys(shared.items)).toHaveLength(31);
  });
});
