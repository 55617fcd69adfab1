import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnavailableError, type TagwardenError } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { journalSize } from '../store/journal.ts';
import { openDb } from '../store/open.ts';
import { createJournalWriter, type JournalWriterOptions } from './journal-writer.ts';
import { FakeClock } from '../lib/fake-clock.ts';

const hit = (n: number) => ({ siteId: 'shop', receivedAt: n, payload: `{"n":${n}}` });

describe('journal writer (group commit)', () => {
  let db: Db;
  let transactions: number;
  beforeEach(async () => {
    const inner = await openDb('sqlite::memory:');
    transactions = 0;
    db = Object.assign(Object.create(inner) as Db, {
      transaction: <T>(fn: Parameters<Db['transaction']>[0]) => {
        transactions++;
        return inner.transaction(fn) as Promise<T>;
      },
    });
  });
  afterEach(async () => {
    await db.close();
  });

  const writer = (over: Partial<JournalWriterOptions> = {}) =>
    createJournalWriter({ db, owner: 'me', leaseMs: 30_000, maxHits: 1000, maxBytes: 1_000_000, windowMs: 0, retryAfterS: 2, clock: new FakeClock(5_000), ...over });

  const submit = (w: ReturnType<typeof writer>, hits: ReturnType<typeof hit>[]) =>
    new Promise<number[]>((resolve, reject) => {
      w.submit(hits, resolve, reject);
    });

  it('commits every request of one event-loop turn in one transaction, each getting its own ids', async () => {
    const w = writer();
    const [a, b, c] = await Promise.all([submit(w, [hit(1), hit(2)]), submit(w, [hit(3)]), submit(w, [hit(4), hit(5), hit(6)])]);
    expect(transactions).toBe(1);
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(1);
    expect(c).toHaveLength(3);
    const all = [...a, ...b, ...c];
    expect(all).toEqual([...all].sort((x, y) => x - y));
    expect(w.size).toEqual({ hits: 6, bytes: 6 * 7 });
    expect((await journalSize(db, 'shop')).hits).toBe(6);
  });

  it('refuses a whole request beyond a bound, with a 503 and Retry-After, writing none of it', async () => {
    const w = writer({ maxHits: 3 });
    await submit(w, [hit(1), hit(2)]);
    const err = await submit(w, [hit(3), hit(4)]).catch((e: unknown) => e as TagwardenError);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ status: 503, retryAfterS: 2 });
    expect((await journalSize(db, 'shop')).hits).toBe(2);
    // One more fits.
    await submit(w, [hit(5)]);
    const bytes = writer({ maxBytes: 10 });
    await expect(submit(bytes, [hit(1), hit(2)])).rejects.toBeInstanceOf(UnavailableError);
  });

  it('finishing hits frees their room and deletes their rows', async () => {
    const w = writer({ maxHits: 2 });
    const ids = await submit(w, [hit(1), hit(2)]);
    await expect(submit(w, [hit(3)])).rejects.toBeInstanceOf(UnavailableError);
    w.finish(ids);
    w.finish(ids); // twice: counted once
    expect(w.size).toEqual({ hits: 0, bytes: 0 });
    await submit(w, [hit(3)]);
    await w.close();
    expect((await journalSize(db, 'shop')).hits).toBe(1);
  });

  it('a failed commit refuses its requests and gives their room back', async () => {
    const errors: unknown[] = [];
    const broken = Object.assign(Object.create(db) as Db, { transaction: () => Promise.reject(new Error('disk full')) });
    const failing = writer({ db: broken, retryAfterS: 1, onError: (_what, e) => errors.push(e) });
    await expect(submit(failing, [hit(1)])).rejects.toMatchObject({ code: 'TW_ERR_UNAVAILABLE', retryAfterS: 1 });
    expect(failing.size).toEqual({ hits: 0, bytes: 0 });
    expect(errors).toHaveLength(1);
  });

  it('adopted hits (taken over from the store) are counted out when they finish', () => {
    const w = writer({ initial: { hits: 1, bytes: 10 } });
    w.adopt(77, 10, true);
    w.adopt(78, 5, false);
    expect(w.size).toEqual({ hits: 2, bytes: 15 });
    w.finish([77, 78]);
    expect(w.size).toEqual({ hits: 0, bytes: 0 });
  });

  it('after close, submits are refused; what was gathered still commits', async () => {
    const w = writer();
    const pending = submit(w, [hit(1)]);
    await w.close();
    expect(await pending).toHaveLength(1);
    await expect(submit(w, [hit(2)])).rejects.toBeInstanceOf(UnavailableError);
  });
});
