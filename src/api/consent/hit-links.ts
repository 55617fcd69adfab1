import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { SubjectRef } from '../../store/types.ts';

/**
 * Links a hit's visitor id and user id in the consent store, so consent pushed for the user
 * applies to the visitor and the other way round (the issue: "linked when an event or a push
 * carries both"). A write per hit would cost more than the hit: each pair is linked once, then
 * remembered (LRU). Failures are logged, never a failure of the hit.
 */
export function createHitLinker(o: {
  siteId: string;
  link(siteId: string, a: SubjectRef, b: SubjectRef): Promise<unknown>;
  log: Logger;
  maxPairs?: number;
}): (visitorId: string, userId: string) => void {
  const seen = new LRUCache<string, true>({ max: o.maxPairs ?? 100_000 });
  return (visitorId, userId) => {
    const key = `${visitorId}\u0000${userId}`;
    if (seen.has(key)) return;
    seen.set(key, true);
    o.link(o.siteId, { type: 'user', id: userId }, { type: 'visitor', id: visitorId }).catch((err: unknown) => {
      seen.delete(key);
      o.log.warn({ err }, 'could not link a visitor to its user in the consent store');
    });
  };
}
