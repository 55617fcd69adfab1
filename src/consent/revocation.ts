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
 * destination settles it, bounded by count and by the retry window. Each subject is asked:
 * a revocation stored for the user binds its events as much as one stored for the visitor (and the
 * store reads a subject with the subjects linked to it). An event it no longer holds, or one with
 * neither id, has nothing the store could revoke.
 */
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
  /** What the ttl is measured on, and the time of an event whose receivedAt cannot be read. Default: the system clock. */
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

/** What the check keeps about one queued event. */
interface Origin {
  subjects: SubjectRef[];
  receivedAtMs: number;
  /** When it stops being checked (the clock's time of `remember` plus the ttl). */
  forgetAt: number;
}

export function createRevocationCheck(o: RevocationCheckOptions): RevocationCheck {
  const clock = o.clock ?? systemClock;
  const max = o.maxEntries ?? 500_000;
  // Per destination, by message id: an event goes to several destinations, each settling it on its
  // own. Plain Maps, not an LRU with a ttl: this is written, read and deleted three times per hit,
  // and the LRU's bookkeeping (and a key string made per call) was ~3% of a hit's CPU. A Map keeps
  // insertion order, which here is the order of remember(), so its first entry is its oldest:
  // expiry and the count bound both take from the front.
  const byDestination = new Map<string, Map<string, Origin>>();
  let size = 0;

  const drop = (events: Map<string, Origin>, messageId: string): void => {
    if (events.delete(messageId)) size--;
  };
  /** Forgets what expired at the front of `events`, and the oldest entries while over the bound. */
  const trim = (events: Map<string, Origin>, now: number): void => {
    for (const [messageId, origin] of events) {
      if (origin.forgetAt > now && size < max) break;
      drop(events, messageId);
    }
    // Still full (every entry is another destination's): the oldest of the largest goes.
    while (size >= max) {
      let largest: Map<string, Origin> | undefined;
      for (const m of byDestination.values()) if (largest === undefined || m.size > largest.size) largest = m;
      const oldest = largest?.keys().next();
      if (largest === undefined || oldest === undefined || oldest.done === true) return;
      drop(largest, oldest.value);
    }
  };

  return {
    remember(destinationId, messageId, ids, receivedAt) {
      const subjects: SubjectRef[] = [];
      if (ids.visitorId !== undefined) subjects.push({ type: 'visitor', id: ids.visitorId });
      if (ids.userId !== undefined) subjects.push({ type: 'user', id: ids.userId });
      if (subjects.length === 0) return;
      let events = byDestination.get(destinationId);
      if (events === undefined) byDestination.set(destinationId, (events = new Map<string, Origin>()));
      const now = clock.now();
      trim(events, now);
      // Parsed here, not on the pipeline's path: only a configured store needs the time.
      const at = Date.parse(receivedAt);
      // Set again, it moves to the back: the order stays that of remember().
      drop(events, messageId);
      events.set(messageId, { subjects, receivedAtMs: Number.isNaN(at) ? now : at, forgetAt: now + o.ttlMs });
      size++;
    },

    settled(destinationId, messageIds) {
      const events = byDestination.get(destinationId);
      if (events === undefined) return;
      for (const messageId of messageIds) drop(events, messageId);
    },

    async recheck(destinationId, messageIds) {
      const allowed = new Set(messageIds);
      const categories = o.categoriesOf(destinationId);
      if (categories === undefined || categories.length === 0) return allowed;
      const events = byDestination.get(destinationId);
      if (events === undefined) return allowed;
      const now = clock.now();
      // One store read per subject, however many of the batch's events it has.
      const bySubject = new Map<string, { subject: SubjectRef; events: Array<{ messageId: string; receivedAtMs: number }> }>();
      for (const messageId of messageIds) {
        const origin = events.get(messageId);
        // Past its ttl it is no longer held, as if never remembered.
        if (origin === undefined || origin.forgetAt <= now) continue;
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
