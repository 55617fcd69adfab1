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
    if (journal !== undefined) {
      journal.commit(hits, ok, fail);
      return;
    }
    for (const h of hits) decideLater(h);
    ok();
  };
}
