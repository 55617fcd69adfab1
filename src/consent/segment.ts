import type { Event } from '../ingest/event.ts';
import type { CategoryConsent, ConsentState } from './state.ts';

export interface SiteCategory {
  aliases?: readonly string[] | undefined;
}

/**
 * Reads `context.consent.categoryPreferences` (https://segment.com/docs/privacy/consent-management/consent-in-segment-connections/).
 * Keys are the site's category ids or their configured aliases; keys the site does not know are
 * ignored (seed row 5). `true` grants, `false` denies, and any other value is an invalid consent
 * input, which revokes: it is read as denied, never as granted or unchanged (Bloomreach's rule).
 * An id and an alias that disagree resolve to denied.
 */
export function consentFromSegment(event: Event, categories: Readonly<Record<string, SiteCategory>>): ConsentState {
  const raw = event.context.consent?.categoryPreferences;
  const present = raw !== null && typeof raw === 'object' && !Array.isArray(raw);
  const prefs = (present ? raw : {}) as Record<string, unknown>;
  const out: Record<string, CategoryConsent> = {};
  if (raw !== undefined && !present) {
    // A categoryPreferences that is not an object (string, array, null) is an invalid input: revoke all.
    for (const id of Object.keys(categories)) out[id] = { status: 'denied', source: 'segment:invalid' };
    return { categories: out, preferencesPresent: true };
  }
  for (const [id, cat] of Object.entries(categories)) {
    let entry: CategoryConsent = { status: 'unknown', source: 'none' };
    if (present) {
      for (const key of [id, ...(cat.aliases ?? [])]) {
        if (!Object.hasOwn(prefs, key)) continue;
        const v = prefs[key];
        const next: CategoryConsent =
          v === true ? { status: 'granted', source: 'segment' } : v === false ? { status: 'denied', source: 'segment' } : { status: 'denied', source: 'segment:invalid' };
        if (entry.status === 'unknown' || next.status === 'denied') entry = next;
      }
    }
    out[id] = entry;
  }
  return { categories: out, preferencesPresent: present };
}
