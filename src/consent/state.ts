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
  /**
   * A grant dated after the hit's arrival decided (src/consent/merge.ts): it stands only because no
   * known signal denies, so a denial stored earlier must still be looked for before it is used.
   */
  late?: true;
}

/** A signal whose own time was later than the bound, for explain (src/consent/merge.ts): what it said and what it was bounded to. */
export interface BoundedSignal {
  source: string;
  /** The categories whose time was bounded. */
  categories: string[];
  /** The signal's own time (the latest of those categories'), ms since the epoch. */
  at: number;
  /** The bound it was given (the hit's receivedAt). */
  boundedTo: number;
}

/** The Consent Mode v2 signals that reshape an event rather than gate it (src/policy/decide.ts). */
export type ConsentModeSignal = 'ad_user_data' | 'ad_personalization';

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
   * The hit's own Google Consent Mode v2 values (gcs/gcd) of the two signals that reshape rather
   * than gate: a denial strips user data / turns personalisation off through the destination
   * template's `ad_user_data:denied` / `ad_personalization:denied` rules (src/policy/decide.ts).
   * Absent when the hit carried no Consent Mode, or neither signal was set.
   */
  consentMode?: Partial<Record<ConsentModeSignal, 'granted' | 'denied'>>;
  /**
   * IAB TCF: whether it applies to this hit (`gdpr=1`, or a string present without `gdpr=0`) and
   * the decoded string's result. Destinations with a TCF requirement are checked against it.
   */
  tcf?: { applies: boolean; result?: TcfResult; source?: string };
  /**
   * Signals dated later than the hit's arrival by more than `site.consentClockSkewMs`: bounded to
   * the arrival like every later signal, and listed here so explain shows the clock that was off.
   * Absent when there are none.
   */
  bounded?: readonly BoundedSignal[];
}

export function unknownState(siteCategories: readonly string[]): ConsentState {
  const categories: Record<string, CategoryConsent> = {};
  for (const c of siteCategories) categories[c] = { status: 'unknown', source: 'none' };
  return { categories, preferencesPresent: false };
}
