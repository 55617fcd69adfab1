/**
 * The journal tracker's writes of one tick (the synchronous run that made them, up to its
 * microtasks), merged before they reach the writer: every work row in one `putWork` (one
 * transaction, one multi-row insert), one `settleWork` per destination, one `finish`. A tick is
 * a deferred batch of hits decided, a lookup's answer releasing a visitor's held events, or a
 * delivery result for a whole batch. A held event costs a held row when it is held, a waiting
 * row when it is decided and a settle when it is delivered: written one by one that is three
 * transactions per event (about 0.1 ms each on SQLite); merged, a few microseconds a row.
 *
 * A microtask, not the next event-loop turn: the writer then sees the writes in the same phase
 * as the tracker made them, so a dead row and the finish that keeps it are written back to back
 * (a CLI replay landing between the two would see its row deleted by the finish).
 *
 * Order: within a tick the rows go first, then the settles, then the finishes. That is the order
 * the tracker needs for any one hit (a dead row before the finish that must keep it; a settle after
 * the held row it removes); a settle is never followed by a row for the same hit and destination
 * (a settled destination is done with the hit). Between ticks the writer's own order holds. A row
 * written twice in a tick (held, then decided) is written once, as it was last.
 */
import type { WorkRow } from '../store/journal.ts';
import type { TrackerSink } from './journal-tracker.ts';

export interface TickSink extends TrackerSink {
  /** Hands what is gathered to the writer now (close). */
  flush(): void;
}

export function createTickSink(target: TrackerSink): TickSink {
  let rows = new Map<string, WorkRow>();
  let settles = new Map<string, number[]>();
  let finishes: number[] = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const r = rows;
    const s = settles;
    const f = finishes;
    rows = new Map();
    settles = new Map();
    finishes = [];
    if (r.size > 0) target.putWork([...r.values()]);
    for (const [destinationId, ids] of s) target.settleWork(destinationId, ids);
    if (f.length > 0) target.finish(f);
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      if (scheduled) flush();
    });
  }

  return {
    putWork(list) {
      // One row per hit and destination, its last version: PostgreSQL refuses an upsert that
      // touches a row twice in one statement.
      for (const w of list) rows.set(`${w.hitId}\u0000${w.destinationId}`, w);
      schedule();
    },
    settleWork(destinationId, ids) {
      const list = settles.get(destinationId);
      if (list === undefined) settles.set(destinationId, [...ids]);
      else list.push(...ids);
      schedule();
    },
    finish(ids) {
      finishes.push(...ids);
      schedule();
    },
    flush,
  };
}
