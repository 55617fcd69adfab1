import type { HitToDecide, JournalRuntime } from '../delivery/journal-runtime.ts';
import type { AcceptedHit, CommitHits } from '../ingest/hit-sink.ts';

/**
 * A request's accepted hits, made durable before its answer (src/delivery/journal-runtime.ts),
 * which then hands them to `decideLater`. Without a journal they are queued to be decided at once
 * and the answer does not wait.
 */
export function createCommit(journal: Pick<JournalRuntime, 'commit'> | undefined, decideLater: (hit: HitToDecide) => void): CommitHits {
  return (accepted: readonly AcceptedHit[], ok, fail) => {
    // What `accept` (./accept.ts) returned: the routes hand it back untouched.
    const hits = accepted as readonly HitToDecide[];
    // A preview's hits (a marketer's own browser, src/preview/) are not journaled: after a restart
    // they would be decided without their preview, i.e. sent as ordinary hits. Lost at a crash
    // instead, which a preview can afford. A request's hits share their preview (one token per request).
    if (journal !== undefined && hits.some((h) => h.signals.preview !== undefined)) {
      const durable = hits.filter((h) => h.signals.preview === undefined);
      for (const h of hits) if (h.signals.preview !== undefined) decideLater(h);
      if (durable.length === 0) ok();
      else journal.commit(durable, ok, fail);
      return;
    }
    if (journal !== undefined) {
      journal.commit(hits, ok, fail);
      return;
    }
    for (const h of hits) decideLater(h);
    ok();
  };
}
