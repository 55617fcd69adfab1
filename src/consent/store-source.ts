import { LRUCache } from 'lru-cache';
import { subjectKey, type SubjectConsent, type SubjectRef } from '../store/types.ts';
import type { CategorySignal } from './merge.ts';
import type { ConsentSource } from './upstream/source.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { StoreSignal, StoredTcf, StoredTcfReader } from './stored-tcf.ts';

/**
 * The consent store as a source of consent a hit does not carry (step 2 of DESIGN.md "Consent
 * resolution"), with a per-visitor cache so a hit costs no database read once its visitor is
 * known. A write for a visitor invalidates its entry at once in this instance (the store's
 * afterCommit) and in the others within a second (the PostgreSQL change feed). Expired items
 * read as denied; each category keeps its own consent time for the merge.
 */
export interface StoreSourceOptions {
  siteId: string;
  /** Site category ids: only these become signals (other consent items, e.g. newsletters, do not gate tags). */
  categories: readonly string[];
  read(siteId: string, subject: SubjectRef, now?: number): Promise<SubjectConsent | undefined>;
  /** Entries kept (LRU); each holds a visitor's answer, "nothing stored" included. */
  maxEntries?: number;
  /** Longest an entry is trusted without a change notification (a missed NOTIFY heals after it). */
  ttlMs?: number;
  /** The time source; default the system clock. */
  clock?: Clock;
  /**
   * Decodes the profile's stored TCF string (./stored-tcf.ts): the signal then carries it for the
   * destinations' TCF requirements, and it decides the TCF-mapped categories no item states.
   * Absent: a stored string is ignored.
   */
  tcf?: StoredTcfReader;
}

/** A stored item's effective status: granted only while granted and not expired (flag or valid_until). */
export function itemStatus(item: SubjectConsent['items'][string], now: number): 'granted' | 'denied' {
  const expired = item.expired || (item.validUntil !== null && item.validUntil <= now);
  return item.status === 'granted' && !expired ? 'granted' : 'denied';
}

/**
 * The signal a stored record gives: its items for the site categories, then, with `tcf`, what the
 * profile's TCF string decides (seed seeka-server-side-consent.txt: the string on the profile
 * gates every server-side egress), the decoded string riding along for vendor checks.
 */
export function storeSignal(consent: SubjectConsent | undefined, categories: readonly string[], now: number, tcf?: StoredTcfReader): StoreSignal | undefined {
  if (consent === undefined) return undefined;
  const out: Record<string, 'granted' | 'denied'> = {};
  const at: Record<string, number> = {};
  let latest = Number.NaN;
  for (const c of categories) {
    const item = consent.items[c];
    if (item === undefined) continue;
    out[c] = itemStatus(item, now);
    at[c] = item.consentAt;
    if (!(item.consentAt <= latest)) latest = item.consentAt;
  }
  const stored: StoredTcf | undefined = tcf?.read(consent, now);
  if (stored !== undefined && tcf !== undefined) {
    for (const [c, status] of Object.entries(tcf.categories(consent, stored))) {
      out[c] = status;
      at[c] = stored.at;
    }
    if (!(stored.at <= latest)) latest = stored.at;
  }
  // A stored string alone is an answer too: it binds destinations with a TCF requirement.
  if (Object.keys(out).length === 0 && stored === undefined) return undefined;
  // The profile's version names the record this answer is: a decision receipt cites it.
  const signal: StoreSignal = { source: 'store', at: latest, atByCategory: at, categories: out, version: consent.version };
  if (stored !== undefined) signal.tcf = stored;
  return signal;
}

/** When the first still-valid granted site category expires (ms since the epoch); Infinity when none will. */
export function grantsValidUntil(consent: SubjectConsent | undefined, categories: readonly string[], now: number): number {
  let soonest = Number.POSITIVE_INFINITY;
  for (const c of categories) {
    const item = consent?.items[c];
    if (item === undefined || item.status !== 'granted' || item.expired || item.validUntil === null || item.validUntil <= now) continue;
    if (item.validUntil < soonest) soonest = item.validUntil;
  }
  return soonest;
}

export interface StoreSource extends ConsentSource {
  /** Forget a subject's entry (a local write, or a change announced by another instance). */
  forget(subjectKey: string): void;
  /** True when the cache holds "nothing stored" for the visitor (the upstream may then be asked). */
  knowsNothing(visitorId: string): boolean;
  /**
   * The visitor's stored record through the same cache (the verify route answers from it).
   * Rejects when the store cannot be read.
   */
  readVisitor(visitorId: string): Promise<SubjectConsent | undefined>;
  /** `lookup` for any subject (a user id as well as a visitor id), through the same cache. */
  lookupSubject(subject: SubjectRef): Promise<{ signal: CategorySignal } | { failure: 'store_nothing' | 'store_error' }>;
}

/**
 * One visitor's cached answer: the record, and the signal derived from it until `validUntil`, the
 * moment its first grant expires; the signal is derived again then, so an expiring consent stops
 * counting when it expires, not when the entry happens to go.
 */
interface Entry {
  consent: SubjectConsent | undefined;
  signal: StoreSignal | undefined;
  validUntil: number;
}

export function createStoreSource(o: StoreSourceOptions): StoreSource {
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const cache = new LRUCache<string, Entry>({ max: o.maxEntries ?? 100_000, ttl: o.ttlMs ?? 60_000 });
  // A read started before a write must not cache its older answer (the rule the upstream follows
  // too): each forget bumps the key's generation, and a read caches only if it did not change.
  // The map is bounded; a key it lost reads as generation 0, which can only make a read not cache.
  const generation = new Map<string, number>();

  function forget(subjectKey: string): void {
    cache.delete(subjectKey);
    if (generation.size >= 100_000) generation.clear();
    generation.set(subjectKey, (generation.get(subjectKey) ?? 0) + 1);
  }

  function entryOf(consent: SubjectConsent | undefined, at: number): Entry {
    const signal = storeSignal(consent, o.categories, at, o.tcf);
    return { consent, signal, validUntil: validUntilOf(consent, signal, at) };
  }

  /** The first moment the derived signal may change by itself: a grant's expiry, or the stored TCF string's age bound. */
  function validUntilOf(consent: SubjectConsent | undefined, signal: StoreSignal | undefined, at: number): number {
    const grants = grantsValidUntil(consent, o.categories, at);
    return o.tcf === undefined ? grants : Math.min(grants, o.tcf.validUntil(signal?.tcf));
  }

  /** The entry's signal as of now (derived again once a grant in it has expired). */
  function signalOf(entry: Entry): CategorySignal | undefined {
    const at = now();
    if (at >= entry.validUntil) {
      entry.signal = storeSignal(entry.consent, o.categories, at, o.tcf);
      entry.validUntil = validUntilOf(entry.consent, entry.signal, at);
    }
    return entry.signal;
  }

  /** The cached entry, or a read of the store (cached unless a change arrived meanwhile). Rejects on a store error. */
  async function entry(subject: SubjectRef): Promise<Entry> {
    const key = subjectKey(subject);
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const started = generation.get(key) ?? 0;
    const at = now();
    const fresh = entryOf(await o.read(o.siteId, subject, at), at);
    if ((generation.get(key) ?? 0) === started) cache.set(key, fresh);
    return fresh;
  }

  async function lookupSubject(subject: SubjectRef): Promise<{ signal: CategorySignal } | { failure: 'store_nothing' | 'store_error' }> {
    try {
      const signal = signalOf(await entry(subject));
      return signal === undefined ? { failure: 'store_nothing' } : { signal };
    } catch {
      return { failure: 'store_error' };
    }
  }

  return {
    cached(visitorId) {
      const hit = cache.get(`visitor:${visitorId}`);
      return hit === undefined ? undefined : signalOf(hit);
    },
    knowsNothing(visitorId) {
      const hit = cache.get(`visitor:${visitorId}`);
      return hit !== undefined && signalOf(hit) === undefined;
    },
    lookup: (visitorId) => lookupSubject({ type: 'visitor', id: visitorId }),
    lookupSubject,
    async readVisitor(visitorId) {
      return (await entry({ type: 'visitor', id: visitorId })).consent;
    },
    forget,
    invalidate: (visitorId) => forget(`visitor:${visitorId}`),
    close: () => Promise.resolve(),
  };
}

/**
 * The resolution chain after the hit's own signals: the consent store, then the upstream verify
 * API for visitors the store knows nothing about. A store error is a failure (never consent, and
 * not a reason to skip the system of record).
 */
const NONE: CategorySignal = Object.freeze({ source: 'store:none', at: Number.NaN, categories: Object.freeze({}) });

export function chainSources(store: StoreSource, upstream: ConsentSource | undefined): ConsentSource {
  const readiness = upstream?.readiness?.bind(upstream);
  return {
    // The store answers at once; only the upstream has windows to wait out.
    ...(readiness === undefined ? {} : { readiness }),
    cached(visitorId) {
      const own = store.cached(visitorId);
      if (own !== undefined) return own;
      if (!store.knowsNothing(visitorId)) return undefined;
      return upstream === undefined ? NONE : upstream.cached(visitorId);
    },
    async lookup(visitorId) {
      const own = await store.lookup(visitorId);
      if ('signal' in own || own.failure !== 'store_nothing') return own;
      // Nothing stored and nobody else to ask: known to be unknown (whenUnknown and opt-out apply),
      // which is an answer, not a failure.
      return upstream === undefined ? { signal: NONE } : upstream.lookup(visitorId);
    },
    invalidate(visitorId) {
      store.invalidate(visitorId);
      upstream?.invalidate(visitorId);
    },
    async close() {
      await upstream?.close();
    },
  };
}
