import type { Db } from '../../store/db.ts';
import { replayDead, type DeadFilter } from '../../store/journal.ts';

const PAGE = 1000;

/**
 * Replays every dead letter matching the filter (at most `limit` when given), a page per
 * transaction. Only letters dead before the replay began: one that dies again meanwhile (its
 * vendor still refuses) is not replayed a second time by the same call, so the loop ends.
 */
export async function replayMatching(db: Db, f: DeadFilter, now: number): Promise<number> {
  const before = Math.min(f.before ?? Number.POSITIVE_INFINITY, now + 1);
  let replayed = 0;
  for (;;) {
    const want = f.limit === undefined ? PAGE : Math.min(PAGE, f.limit - replayed);
    if (want <= 0) return replayed;
    const n = await replayDead(db, { ...f, before, limit: want }, now);
    replayed += n;
    if (n < want) return replayed;
  }
}
