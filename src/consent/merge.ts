import { supersedes, type ConsentClaim } from './last-write-wins.ts';
import type { CategoryConsent } from './state.ts';

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
}

export interface MergeInput {
  siteCategories: readonly string[];
  /** Categories marked `saleOrShare` in config. */
  saleOrShare: ReadonlySet<string>;
  /** A `Sec-GPC: 1` header on the hit. */
  gpc: boolean;
  signals: readonly CategorySignal[];
}

/**
 * The documented precedence (docs/consent.md), per category:
 * 1. Global Privacy Control: with `Sec-GPC: 1`, a sale/share category is denied, whatever any
 *    other signal says (https://privacycg.github.io/gpc-spec/, CCPA regulations §7025).
 * 2. Otherwise the most recent signal by its own timestamp decides (Seeka: last write wins).
 * 3. Signals equally recent that disagree: denied (the most restrictive).
 * 2 and 3 are the rule of ./last-write-wins.ts, the one the consent store applies too.
 * A category no signal covers is `unknown`. Pure: the tables in merge.test.ts pin it down.
 */
export function mergeSignals(input: MergeInput): Record<string, CategoryConsent> {
  const out: Record<string, CategoryConsent> = {};
  for (const category of input.siteCategories) {
    if (input.gpc && input.saleOrShare.has(category)) {
      out[category] = { status: 'denied', source: 'gpc' };
      continue;
    }
    let best: ConsentClaim | undefined;
    for (const s of input.signals) {
      if (!Object.hasOwn(s.categories, category)) continue;
      const status = s.categories[category];
      if (status !== 'granted' && status !== 'denied') continue;
      const claim: ConsentClaim = { status, source: s.source, at: s.atByCategory?.[category] ?? s.at };
      if (best === undefined || supersedes(claim, best)) best = claim;
    }
    out[category] =
      best === undefined
        ? { status: 'unknown', source: 'none' }
        : Number.isFinite(best.at)
          ? { status: best.status, source: best.source, at: best.at }
          : { status: best.status, source: best.source };
  }
  return out;
}
