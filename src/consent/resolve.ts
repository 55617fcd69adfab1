import type { Event } from '../ingest/event.ts';
import { gcmState, type GcmSignal } from './gcm.ts';
import { mergeSignals, signalsBeyond, type CategorySignal } from './merge.ts';
import { consentFromSegment, type SiteCategory } from './segment.ts';
import type { RequestSignals } from './signals.ts';
import type { ConsentModeSignal, ConsentState } from './state.ts';
import { createTcfReader, purposesConsented, type TcfReader } from './tcf.ts';
import { withStoredTcf } from './stored-tcf.ts';

/** A site category as consent resolution needs it (config `site.categories.<id>`). */
export interface ResolverCategory extends SiteCategory {
  saleOrShare?: boolean | undefined;
  tcf?: { purposes: readonly number[] } | undefined;
  gcm?: readonly GcmSignal[] | undefined;
}

export interface ResolverOptions {
  categories: Readonly<Record<string, ResolverCategory>>;
  tcf: { maxLength: number; maxAgeDays: number; cacheEntries: number };
  /**
   * `site.consentClockSkewMs`: signals dated later than the hit's arrival by more than this are
   * listed as bounded (explain). Every signal later than the arrival is bounded whatever it is.
   * Default 300,000 (5 min), the schema's.
   */
  clockSkewMs?: number;
}

export interface ConsentResolver {
  /**
   * The consent state from what the hit itself carries (step 1 of DESIGN.md "Consent
   * resolution"), merged with `extra` signals from elsewhere (the consent store, the upstream).
   */
  fromRequest(event: Event, signals: RequestSignals, now: Date, extra?: readonly CategorySignal[]): ConsentState;
  /** The bounded, cached reader of TCF strings (`consent.tcf`), shared with the stored-string reader (./stored-tcf.ts). */
  readonly tcf: TcfReader;
}

const DAY_MS = 86_400_000;

/** The Consent Mode signals the state carries as stated (policy reshapes by them, src/policy/decide.ts). */
const RESHAPING: readonly ConsentModeSignal[] = ['ad_user_data', 'ad_personalization'];

/**
 * Turns every signal a hit carries into one ConsentState: the Segment consent object, Google
 * Consent Mode (gcs/gcd), a TCF string and Sec-GPC, each mapped onto the site's categories by
 * config, then merged by the documented precedence (merge.ts, docs/consent.md).
 */
export function createConsentResolver(options: ResolverOptions): ConsentResolver {
  const categories = options.categories;
  const ids = Object.keys(categories);
  const saleOrShare = new Set(ids.filter((id) => categories[id]?.saleOrShare === true));
  const gcmMapped = ids.filter((id) => (categories[id]?.gcm?.length ?? 0) > 0);
  const tcfMapped = ids.filter((id) => (categories[id]?.tcf?.purposes.length ?? 0) > 0);
  const skewMs = options.clockSkewMs ?? 300_000;
  const tcf = createTcfReader({ maxLength: options.tcf.maxLength, maxAgeMs: options.tcf.maxAgeDays * DAY_MS, cacheEntries: options.tcf.cacheEntries });

  return {
    tcf,
    fromRequest(event, signals, now, extra = []) {
      const hitTime = Date.parse(event.receivedAt);
      const list: CategorySignal[] = [...extra];

      const segment = consentFromSegment(event, categories);
      const segmentAt = Date.parse(event.timestamp);
      const valid: Record<string, 'granted' | 'denied'> = {};
      const invalid: Record<string, 'granted' | 'denied'> = {};
      for (const [id, c] of Object.entries(segment.categories)) {
        if (c.status === 'unknown') continue;
        (c.source === 'segment:invalid' ? invalid : valid)[id] = c.status;
      }
      if (Object.keys(valid).length > 0) list.push({ source: 'segment', at: segmentAt, categories: valid });
      if (Object.keys(invalid).length > 0) list.push({ source: 'segment:invalid', at: segmentAt, categories: invalid });

      const gcm = signals.gcs !== undefined || signals.gcd !== undefined ? gcmState({ gcs: signals.gcs, gcd: signals.gcd }) : undefined;
      // The two signals that reshape rather than gate, as the hit states them (src/policy/decide.ts).
      let consentMode: ConsentState['consentMode'];
      for (const s of RESHAPING) {
        const v = gcm?.[s];
        if (v === 'granted' || v === 'denied') (consentMode ??= {})[s] = v;
      }
      if (gcm !== undefined && gcmMapped.length > 0) {
        const mapped: Record<string, 'granted' | 'denied'> = {};
        for (const id of gcmMapped) {
          const needs = categories[id]?.gcm ?? [];
          // Every listed signal granted grants; any denied denies; otherwise Consent Mode says nothing.
          if (needs.some((s) => gcm[s] === 'denied')) mapped[id] = 'denied';
          else if (needs.every((s) => gcm[s] === 'granted')) mapped[id] = 'granted';
        }
        if (Object.keys(mapped).length > 0) list.push({ source: 'gcm', at: hitTime, categories: mapped });
      }

      let tcfContext: ConsentState['tcf'] = { applies: signals.gdprApplies === true };
      if (signals.tcf !== undefined) {
        const result = tcf.read(signals.tcf.value, now);
        tcfContext = { applies: signals.gdprApplies !== false, result, source: signals.tcf.source };
        if (tcfMapped.length > 0) {
          const mapped: Record<string, 'granted' | 'denied'> = {};
          for (const id of tcfMapped) {
            // An invalid string grants nothing and revokes what it would have covered (DESIGN.md:
            // an invalid consent input revokes; it never leaves consent unchanged).
            mapped[id] = result.ok && purposesConsented(result.tcf, categories[id]?.tcf?.purposes ?? []) ? 'granted' : 'denied';
          }
          list.push(result.ok ? { source: 'tcf', at: result.tcf.lastUpdated.getTime(), categories: mapped } : { source: 'tcf:invalid', at: hitTime, categories: mapped });
        }
      }

      // The profile's stored TCF string, when the consent store's signal brings one (./stored-tcf.ts).
      tcfContext = withStoredTcf(tcfContext, extra, signals.gdprApplies);

      // Every time above is the signal's own (the event's timestamp is the sender's clock, a TCF
      // string's lastUpdated its CMP's, the store's consentAt whatever it was pushed with): the
      // merge bounds them all by the hit's arrival (issue 13).
      const state: ConsentState = {
        categories: mergeSignals({ siteCategories: ids, saleOrShare, gpc: signals.gpc, signals: list, notAfter: hitTime }),
        preferencesPresent: segment.preferencesPresent,
        gpc: signals.gpc,
        tcf: tcfContext,
      };
      if (consentMode !== undefined) state.consentMode = consentMode;
      const bounded = signalsBeyond(list, hitTime, skewMs);
      if (bounded.length > 0) state.bounded = bounded;
      return state;
    },
  };
}
