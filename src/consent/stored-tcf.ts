import type { SubjectConsent } from '../store/types.ts';
import { supersedes } from './last-write-wins.ts';
import type { CategorySignal } from './merge.ts';
import type { ConsentState } from './state.ts';
import { createTcfReader, purposesConsented, type TcfReader, type TcfResult } from './tcf.ts';

/**
 * The TCF string kept on a visitor's profile (`consent_records.tcf_string`: a push's `tcfString`,
 * Seeka's `consent.privacy.tcfConsentString`, or a hit's string recorded with
 * `store.recordHitConsent`), decoded with the same bounded reader as a hit's `gdpr_consent`
 * (./tcf.ts, behind ./tcf-guard.ts) and used like a hit's TCF signal. Seed
 * seeka-server-side-consent.txt: the string is "stored on the user's profile" and Seeka "decodes
 * this string on every server-side egress and decides whether each destination is permitted".
 *
 * An undecodable, expired or otherwise invalid stored string is "no valid TCF consent": it grants
 * nothing, denies the categories mapped to TCF purposes that no item states, and fails every
 * destination's TCF requirement. It is never read as consent.
 */
export interface StoredTcf {
  /** The string as stored, so a writer can tell whether a hit's string is already recorded. */
  value: string;
  result: TcfResult;
  /** Its time for last-write-wins: LastUpdated when valid, else the profile's latest consent time. */
  at: number;
}

/** A consent-store signal may carry the profile's decoded TCF string beside its categories. */
export interface StoreSignal extends CategorySignal {
  tcf?: StoredTcf;
}

export interface StoredTcfReaderOptions {
  /** `consent.tcf` of the config: the same bounds as for strings carried by hits. */
  tcf: { maxLength: number; maxAgeDays: number; cacheEntries: number };
  /** The site categories (`site.categories`); those with `tcf.purposes` are the ones a string can decide. */
  categories: Readonly<Record<string, { tcf?: { purposes: readonly number[] } | undefined }>>;
  /**
   * The reader of hits' strings (ConsentResolver.tcf, built from the same `consent.tcf`): a string
   * a hit carries and its profile stores is then decoded and cached once, and the cache stays
   * within `consent.tcf.cacheEntries`. Absent: a reader of its own.
   */
  reader?: TcfReader;
}

export interface StoredTcfReader {
  /** The profile's string decoded as of `now`; undefined when none is stored. */
  read(consent: SubjectConsent | undefined, now: number): StoredTcf | undefined;
  /**
   * The site categories the stored string decides: each category mapped to TCF purposes that no
   * item states, or whose item the (valid) string is newer than; granted when every purpose has
   * consent in a valid string.
   */
  categories(consent: SubjectConsent, stored: StoredTcf): Record<string, 'granted' | 'denied'>;
  /** When a decoded string stops being valid (its age bound), for a cache of derived answers; Infinity when it never will. */
  validUntil(stored: StoredTcf | undefined): number;
  /** The consent with the categories the stored string decides added as items (source `tcf`), for readers that look at items only. */
  withItems(consent: SubjectConsent, now: number): SubjectConsent;
}

const DAY_MS = 86_400_000;

export function createStoredTcfReader(o: StoredTcfReaderOptions): StoredTcfReader {
  // An LRU of decoded strings: profiles share strings (one CMP version writes the same string for
  // every visitor who made the same choice), so most reads are cache hits; the date checks run on
  // every read, so a cached string still expires on time.
  const reader: TcfReader = o.reader ?? createTcfReader({ maxLength: o.tcf.maxLength, maxAgeMs: o.tcf.maxAgeDays * DAY_MS, cacheEntries: Math.max(1, o.tcf.cacheEntries) });
  const maxAgeMs = o.tcf.maxAgeDays * DAY_MS;
  const mapped = Object.entries(o.categories)
    .map(([id, c]) => [id, c.tcf?.purposes ?? []] as const)
    .filter(([, p]) => p.length > 0);

  function read(consent: SubjectConsent | undefined, now: number): StoredTcf | undefined {
    const value = consent?.tcfString;
    if (consent === undefined || value === null || value === undefined) return undefined;
    const result = reader.read(value, new Date(now));
    // An invalid string has no time of its own: the profile's latest consent time stands for it.
    const at = result.ok ? result.tcf.lastUpdatedMs : (consent.consentAt ?? consent.updatedAt);
    return { value, result, at };
  }

  function categories(consent: SubjectConsent, stored: StoredTcf): Record<string, 'granted' | 'denied'> {
    const out: Record<string, 'granted' | 'denied'> = {};
    for (const [id, purposes] of mapped) {
      const status: 'granted' | 'denied' = stored.result.ok && purposesConsented(stored.result.tcf, purposes) ? 'granted' : 'denied';
      const item = Object.hasOwn(consent.items, id) ? consent.items[id] : undefined;
      if (item !== undefined) {
        // An item stated for the category (a push, an event, a hit's Segment object) and the
        // string are two writes of the same consent: the later wins (last-write-wins, seed
        // seeka-server-side-consent.txt), by the one precedence rule. An invalid string has no
        // time of its own, so it never overrides a stated item; it only fills in.
        if (!stored.result.ok) continue;
        const claim = { status, at: stored.at, validUntil: null, source: 'tcf' };
        if (!supersedes(claim, { status: item.status, at: item.consentAt, validUntil: item.validUntil, source: item.source })) continue;
      }
      out[id] = status;
    }
    return out;
  }

  return {
    read,
    categories,
    validUntil(stored) {
      // checkDates refuses a string once now − LastUpdated exceeds the maximum age.
      return stored?.result.ok === true ? stored.result.tcf.lastUpdatedMs + maxAgeMs + 1 : Number.POSITIVE_INFINITY;
    },
    withItems(consent, now) {
      const stored = read(consent, now);
      if (stored === undefined) return consent;
      const decided = categories(consent, stored);
      if (Object.keys(decided).length === 0) return consent;
      const items = { ...consent.items };
      for (const [id, status] of Object.entries(decided)) items[id] = { item: id, status, consentAt: stored.at, validUntil: null, source: 'tcf', expired: false };
      return { ...consent, items };
    },
  };
}

/** The stored string a store signal carries, if any (the newest of several). */
function storedTcfOf(extra: readonly CategorySignal[]): StoredTcf | undefined {
  let best: StoredTcf | undefined;
  for (const s of extra as readonly StoreSignal[]) {
    const t = s.tcf;
    if (t !== undefined && (best === undefined || t.at > best.at)) best = t;
  }
  return best;
}

/**
 * The hit's TCF context with the profile's stored string taken into account (called by
 * ./resolve.ts with the signals from elsewhere). `gdpr=0` on the hit: TCF does not apply, as for
 * a string the hit carries. A hit without a string of its own is checked against the stored one.
 * A hit with its own string: the more recent of the two by its own time (LastUpdated; the stored
 * invalid string by the profile's time) decides, the hit's on a tie, and an invalid string of the
 * hit's own always (it revokes; it is the newest thing the visitor's browser said).
 */
export function withStoredTcf(context: ConsentState['tcf'], extra: readonly CategorySignal[], gdprApplies: boolean | undefined): ConsentState['tcf'] {
  const stored = storedTcfOf(extra);
  if (stored === undefined || gdprApplies === false) return context;
  const own = context?.result;
  if (own !== undefined && (!own.ok || own.tcf.lastUpdatedMs >= stored.at)) return context;
  return { applies: true, result: stored.result, source: 'store' };
}
