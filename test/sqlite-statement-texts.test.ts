import { afterEach, describe, expect, it } from 'vitest';
import type { Db, Queryable } from '../src/store/db.ts';
import { appendHits, finishHits, settleWork } from '../src/store/journal.ts';
import { openDb } from '../src/store/open.ts';

/**
 * Regression (issue 16's soak): the journal's group commits built a statement text for every
 * number of hits, so SQLite's statement cache (src/store/sqlite.ts, bounded) filled, and every
 * later commit prepared its statements afresh, each holding native memory until it was garbage
 * collected: the heap snapshots counted the live statements rising, 348 → 451 in 6 minutes. Now
 * list statements run in power-of-two parts (src/store/parts.ts): a few texts whatever the sizes.
 */
describe('journal statements: a few texts for any number of hits', () => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  /** `db` with every statement text it runs recorded. */
  function recording(inner: Db, texts: Set<string>): Db {
    const spy = (q: Queryable): Queryable => ({
      run: (sql, params) => (texts.add(sql), q.run(sql, params)),
      all: (sql, params) => (texts.add(sql), q.all(sql, params)),
      get: (sql, params) => (texts.add(sql), q.get(sql, params)),
    });
    return { ...inner, ...spy(inner), transaction: (fn) => inner.transaction((tx) => fn(spy(tx))) };
  }

  it('appends, settles and finishes 1 to 300 hits at a time with at most log2(256) + 1 texts per statement', async () => {
    db = await openDb('sqlite::memory:');
    const texts = new Set<string>();
    const journal = recording(db, texts);
    for (let n = 1; n <= 300; n++) {
      const ids = await appendHits(journal, Array.from({ length: n }, (_, i) => ({ siteId: 'shop', receivedAt: n, payload: `{"i":${i}}` })), 'me', 10_000);
      expect(ids).toHaveLength(n);
      await settleWork(journal, 'hook', ids);
      expect(await finishHits(journal, ids, 'me')).toBe(n);
    }
    const kinds = new Map<string, number>();
    for (const t of texts) {
      // The text without its list: one kind of statement.
      const kind = t.replace(/\((\?, )*\?\)|(\(\?, \?, \?, \?, \?, \?, 0\)(, )?)+/g, 'L');
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    for (const [kind, count] of kinds) expect({ kind, count: Math.min(count, 9) }).toEqual({ kind, count });
    expect(texts.size).toBeLessThan(60);
  });
});
