/**
 * "Consent is re-checked before every send" (DESIGN.md, Delivery). An event waiting in its batch,
 * for a request slot, or for its retry may meanwhile have lost the consent it came with: the
 * visitor revoked through the consent API, an import, a webhook-driven push. Before each attempt,
 * the consent store is asked again, and an event whose required category the store now denies with
 * a decision newer than the hit is dropped (`consent_revoked_before_send`, or `_before_retry`).
 *
 * Only the store can revoke after the fact: a hit's own signals (its consent object, Consent Mode,
 * TCF string, GPC) do not change once received, and the upstream verify API is not asked again here
 * (its rate budget belongs to live hits). What each queued event needs for the check (its subjects:
 * the visitor id and the user id it carries, and when it arrived) is kept per destination until that
 * destination settles it, in an LRU bounded by count and by the retry window. Each subject is asked:
 * a revocation stored for the user binds its events as much as one stored for the visitor (and the
 * store reads a subject with the subjects linked to it). An event it no longer holds, or one with
 * neither id, has nothing the store could revoke.
 */
import { LRUCache } from 'lru-cache';
import { subjectKey, type SubjectRef } from '../store/types.ts';
import type { CategorySignal } from './merge.ts';
import { UnavailableError } from '../errors.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

export interface RevocationCheckOptions {
  /** The consent store (not the upstream chain), read through its cache. */
  store: { lookupSubject(subject: SubjectRef): Promise<{ signal: CategorySignal } | { failure: string }> };
  /** The site categories a destination requires (`undefined`: unknown destination, nothing to check). */
  categoriesOf: (destinationId: string) => readonly string[] | undefined;
  /** How long an event may wait for its retries (the delivery's `maxTotalMs`), plus margin. */
  ttlMs: number;
  /** Most events remembered; default 500,000 (about 100 bytes each). */
  maxEntries?: number;
  /** The time of an event whose receivedAt cannot be read. Default: the system clock. */
  clock?: Clock;
}

export interface RevocationCheck {
  /** Records what the check needs about an event handed to a destination's delivery (`receivedAt`: ISO 8601). */
  remember(destinationId: string, messageId: string, ids: { visitorId: string | undefined; userId: string | undefined }, receivedAt: string): void;
  /** The destination is done with these events (delivered, given up, dropped): forget them. */
  settled(destinationId: string, messageIds: readonly string[]): void;
  /**
   * The delivery's recheck hook: the ids still allowed to go out to `destinationId`. Rejects when
   * the store cannot be read, so the delivery parks the events rather than send them unchecked.
   */
  recheck(destinationId: string, messageIds: string[]): Promise<Set<string>>;
}

/**
 * True when the store signal denies one of `categories` with a decision taken after the hit
 * arrived (`receivedAtMs`): that denial is newer than anything the hit carried. Pure.
 */
export function revokedSince(signal: CategorySignal, categories: readonly string[], receivedAtMs: number): boolean {
  for (const c of categories) {
    if (signal.categories[c] !== 'denied') continue;
    const at = signal.atByCategory?.[c] ?? signal.at;
    if (at > receivedAtMs) return true;
  }
  return false;
}

export function createRevocationCheck(o: RevocationCheckOptions): RevocationCheck {
  // Keyed by destination and event: an event goes to several destinations, each settling it on its own.
  const clock = o.clock ?? systemClock;
  const origins = new LRUCache<string, { subjects: SubjectRef[]; receivedAtMs: number }>({ max: o.maxEntries ?? 500_000, ttl: o.ttlMs });
  const key = (destinationId: string, messageId: string): string => `${destinationId}\u0000${messageId}`;

  return {
    remember(destinationId, messageId, ids, receivedAt) {
      const subjects: SubjectRef[] = [];
      if (ids.visitorId !== undefined) subjects.push({ type: 'visitor', id: ids.visitorId });
      if (ids.userId !== undefined) subjects.push({ type: 'user', id: ids.userId });
      if (subjects.length === 0) return;
      // Parsed here, not on the pipeline's path: only a configured store needs the time.
      const at = Date.parse(receivedAt);
      origins.set(key(destinationId, messageId), { subjects, receivedAtMs: Number.isNaN(at) ? clock.now() : at });
    },

    settled(destinationId, messageIds) {
      for (const messageId of messageIds) origins.delete(key(destinationId, messageId));
    },

    async recheck(destinationId, messageIds) {
      const allowed = new Set(messageIds);
      const categories = o.categoriesOf(destinationId);
      if (categories === undefined || categories.length === 0) return allowed;
      // One store read per subject, however many of the batch's events it has.
      const bySubject = new Map<string, { subject: SubjectRef; events: Array<{ messageId: string; receivedAtMs: number }> }>();
      for (const messageId of messageIds) {
        const origin = origins.get(key(destinationId, messageId));
        if (origin === undefined) continue;
        for (const subject of origin.subjects) {
          const k = subjectKey(subject);
          let group = bySubject.get(k);
          if (group === undefined) bySubject.set(k, (group = { subject, events: [] }));
          group.events.push({ messageId, receivedAtMs: origin.receivedAtMs });
        }
      }
      for (const { subject, events } of bySubject.values()) {
        const answer = await o.store.lookupSubject(subject);
        if ('failure' in answer) {
          if (answer.failure === 'store_nothing') continue;
          throw new UnavailableError(`consent store unavailable for the recheck (${answer.failure})`);
        }
        for (const e of events) if (revokedSince(answer.signal, categories, e.receivedAtMs)) allowed.delete(e.messageId);
      }
      return allowed;
    },
  };
}
