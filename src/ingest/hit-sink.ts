/**
 * What a client route hands its hits to (the app), in two steps: `accept` each valid event of the
 * request (it may throw to refuse it, e.g. during shutdown), then `commit` the request's accepted
 * hits, which calls `ok` once they are durable (the route then answers 2xx) or `fail` with the
 * reason they could not be (the route answers that error: 503 with `Retry-After`, never an
 * acknowledgement of a hit that was not kept). Without `commit` (no journal) a hit is answered at
 * once.
 */
import type { TagwardenError } from '../errors.ts';
import type { HitSources } from '../identity/visitor.ts';
import type { Event } from './event.ts';

/** Opaque to the routes: what `accept` returned, handed back to `commit`. */
export type AcceptedHit = unknown;

export type AcceptHit = (event: Event, hit: HitSources) => AcceptedHit;

export type CommitHits = (hits: readonly AcceptedHit[], ok: () => void, fail: (err: TagwardenError) => void) => void;

export interface HitSink {
  /** Hands an accepted event on, with the parts of the request its signals and visitor id are read from; throws to refuse it. */
  accept: AcceptHit;
  /** Makes the request's accepted hits durable before the answer; absent: answered at once. */
  commit?: CommitHits;
}

/** Runs `ok` once the hits are durable (at once without a journal), `fail` when they cannot be. */
export function whenDurable(sink: HitSink, hits: readonly AcceptedHit[], ok: () => void, fail: (err: TagwardenError) => void): void {
  if (sink.commit === undefined || hits.length === 0) ok();
  else sink.commit(hits, ok, fail);
}
