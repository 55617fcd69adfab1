import type { TcfResult } from './tcf.ts';

/**
 * What Tagwarden knows of a visitor's consent, normalised from every signal to the site's own
 * categories. Later signals (TCF, Consent Mode, GPC, the consent store) fill the same shape.
 */
export type CategoryStatus = 'granted' | 'denied' | 'unknown';

export interface CategoryConsent {
  status: CategoryStatus;
  /** Which signal decided it, e.g. `segment`, `segment:invalid`, `gcm`, `tcf`, `gpc`. */
  source: string;
  /** When that signal was given, by its own clock (ms since the epoch), when known. */
  at?: number;
}

export interface ConsentState {
  /** One entry per site category; a category with no signal is `unknown`. */
  categories: Readonly<Record<string, CategoryConsent>>;
  /**
   * True when the event carried a Segment `categoryPreferences` object (even an empty one). In
   * opt-out mode Segment then treats every category missing from it as not consented
   * (seed segment-consent-in-connections.txt, rows 2 and 4 and "Reconcile CMP ... conflicts").
   */
  preferencesPresent: boolean;
  /** The hit carried `Sec-GPC: 1`. */
  gpc?: boolean;
  /**
   * IAB TCF: whether it applies to this hit (`gdpr=1`, or a string present without `gdpr=0`) and
   * the decoded string's result. Destinations with a TCF requirement are checked against it.
   */
  tcf?: { applies: boolean; result?: TcfResult; source?: string };
}

export function unknownState(siteCategories: readonly string[]): ConsentState {
  const categories: Record<string, CategoryConsent> = {};
  for (const c of siteCategories) categories[c] = { status: 'unknown', source: 'none' };
  return { categories, preferencesPresent: false };
}
