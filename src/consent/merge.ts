import { supersedes, type ConsentClaim } from './last-write-wins.ts';
import type { BoundedSignal, CategoryConsent } from './state.ts';

/**
 * One consent signal, already mapped onto site categories: what it says for each category it
 * covers, and when it was given by its own clock (the TCF string's lastUpdated, the hit's time for
 * the Segment object and Consent Mode, consentedAt for the consent store and the upstream).
 */
export interface CategorySignal {
  /** e.g. `segment`, `segment:invalid`, `gcm`, `tcf`, `tcf:invalid`, `store`, `upstream`. */
  source: string;
  /** Milliseconds since the epoch; NaN or missing times sort as oldest. */
  at: number;
  /** Per-category times where they differ (the consent store keeps one per category); `at` otherwise. */
  atByCategory?: Readonly<Record<string, number>>;
  categories: Readonly<Record<string, 'granted' | 'denied'>>;
  /** The consent store's profile version the answer was read at (`store` only): the record a decision receipt relied on. */
  version?: number;
}

export interface MergeInput {
  siteCategories: readonly string[];
  /** Categories marked `saleOrShare` in config. */
  saleOrShare: ReadonlySet<string>;
  /** A `Sec-GPC: 1` header on the hit. */
  gpc: boolean;
  signals: readonly CategorySignal[];
  /**
   * The hit's `receivedAt` (ms since the epoch): no signal counts as later than the hit's arrival
   * (issue 13: a client clock never outranks a denial). Absent or not finite: no bound.
   */
  notAfter?: number;
}

/**
 * The signals dated later than `notAfter + skewMs`: bounded by mergeSignals like any signal after
 * `notAfter`, and listed so that explain can show a clock that was off by more than the skew.
 */
export function signalsBeyond(signals: readonly CategorySignal[], notAfter: number, skewMs: number): BoundedSignal[] {
  const out: BoundedSignal[] = [];
  if (!Number.isFinite(notAfter)) return out;
  for (const s of signals) {
    const categories: string[] = [];
    let at = Number.NEGATIVE_INFINITY;
    for (const c of Object.keys(s.categories)) {
      const t = s.atByCategory?.[c] ?? s.at;
      if (t > notAfter + skewMs) {
        categories.push(c);
        if (t > at) at = t;
      }
    }
    if (categories.length > 0) out.push({ source: s.source, categories: categories.sort(), at, boundedTo: notAfter });
  }
  return out;
}

/**
 * The documented precedence (docs/consent.md), per category:
 * 1. Global Privacy Control: with `Sec-GPC: 1`, a sale/share category is denied, whatever any
 *    other signal says (https://privacycg.github.io/gpc-spec/, CCPA regulations §7025).
 * 2. Otherwise the most recent signal by its own timestamp decides (Seeka: last write wins).
 * 3. Signals equally recent that disagree: denied (the most restrictive).
 * 2 and 3 are the rule of ./last-write-wins.ts, the one the consent store applies too.
 * Before 2 and 3, every signal's time is bounded by the hit's arrival (`notAfter`): the one place
 * the bound is applied, to the hit's own signals and to the store's and the upstream's alike. A
 * signal dated later than the hit's arrival is given the arrival time, so at worst it ties with
 * the hit's own Consent Mode or invalid TCF (dated by the arrival) and the tie is denied. A grant
 * that needed the bound also never overrides a denial: a claim to be later than the hit cannot be
 * believed, and clamping alone would still let it beat a denial dated before the arrival (a TCF
 * string's lastUpdated, a Segment event's timestamp, a stored revocation). Denials that needed
 * the bound keep it: a denial is never weakened by a bad clock.
 * A category no signal covers is `unknown`. Pure: the tables in merge.test.ts pin it down.
 */
export function mergeSignals(input: MergeInput): Record<string, CategoryConsent> {
  const out: Record<string, CategoryConsent> = {};
  const bound = input.notAfter !== undefined && Number.isFinite(input.notAfter) ? input.notAfter : Number.POSITIVE_INFINITY;
  for (const category of input.siteCategories) {
    if (input.gpc && input.saleOrShare.has(category)) {
      out[category] = { status: 'denied', source: 'gpc' };
      continue;
    }
    let best: ConsentClaim | undefined;
    // The best grant that was dated after the hit, kept apart: it decides only when no denial does.
    let lateGrant: ConsentClaim | undefined;
    for (const s of input.signals) {
      if (!Object.hasOwn(s.categories, category)) continue;
      const status = s.categories[category];
      if (status !== 'granted' && status !== 'denied') continue;
      const own = s.atByCategory?.[category] ?? s.at;
      const late = own > bound;
      const claim: ConsentClaim = { status, source: s.source, at: late ? bound : own };
      if (late && status === 'granted') {
        if (lateGrant === undefined || supersedes(claim, lateGrant)) lateGrant = claim;
      } else if (best === undefined || supersedes(claim, best)) best = claim;
    }
    const late = lateGrant !== undefined && (best === undefined || (best.status === 'granted' && supersedes(lateGrant, best)));
    if (late) best = lateGrant;
    const decided: CategoryConsent =
      best === undefined
        ? { status: 'unknown', source: 'none' }
        : Number.isFinite(best.at)
          ? { status: best.status, source: best.source, at: best.at }
          : { status: best.status, source: best.source };
    // Marked so the pipeline still asks the consent store (a revocation stored before the hit must
    // win, as the rule above says) and the hit's recorder never writes it over a stored denial.
    if (late) decided.late = true;
    out[category] = decided;
  }
  return out;
}
