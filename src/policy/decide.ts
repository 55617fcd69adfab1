import type { ConsentModeSignal, ConsentState } from '../consent/state.ts';
import type { TcfRequirement } from '../consent/tcf.ts';
import type { TcfVerdict } from '../consent/tcf-verdict.ts';
import { reasonText, type Reason, type ReasonCode } from './reasons.ts';

export type Outcome = 'forward' | 'redact' | 'hold' | 'drop';
export type DataControlMode = 'disabled' | 'opt-out' | 'opt-in';
export type WhenUnknown = 'drop' | 'hold' | 'redact';

/** What the policy needs to know about one destination (resolved from config + template defaults). */
export interface PolicyDestination {
  id: string;
  /** Required site categories; empty: not gated by category. */
  categories: readonly string[];
  combine: 'all' | 'any';
  whenUnknown: WhenUnknown;
  /**
   * A GPC opt-out that is the only denial: `drop`, or `limited_data_use` reshaping when the template
   * defines that rule (config `consent.whenGpc: limitedDataUse`). Absent: `drop`.
   */
  whenGpc?: 'drop' | 'limitedDataUse';
  /** Keys of the Segment integrations object that address this destination besides its id. */
  integrationNames: readonly string[];
  /** Redaction rules the destination's template defines. */
  redactions: readonly string[];
  /** An IAB TCF requirement, checked by the consent step when TCF applies to the hit (src/consent/tcf-verdict.ts). */
  tcf?: TcfRequirement | undefined;
}

/** The per-category consent the policy reads; TCF comes as a verdict, already checked. */
export type PolicyConsent = Pick<ConsentState, 'categories' | 'preferencesPresent'> & Partial<Pick<ConsentState, 'consentMode'>>;

export interface Decision {
  destinationId: string;
  outcome: Outcome;
  /** The rule that settled the outcome (the last of `reasons`). */
  reason: ReasonCode;
  /** The site category that rule is about, when it is about one. */
  category?: string;
  /** The `reason` label of `tagwarden_decisions_total` and of the drop log: the text of the settling rule. */
  metricLabel: string;
  /**
   * A required category's consent is unknown to the hit and nothing else (TCF, the integrations
   * object, a denial) settled the outcome: consent from elsewhere (the upstream) could change it.
   */
  awaitsConsent: boolean;
  /** Every rule that applied, in order; their texts are the explain API's `reasons` (`reasonTexts`). */
  reasons: readonly Reason[];
  /** Template redaction rules to apply when the outcome is `redact`. */
  redactions: string[];
}

/** The redaction rule a template defines to serve `whenUnknown: redact`. */
export const CONSENT_UNKNOWN_REDACTION = 'consent_unknown';

/** The redaction rule a template defines for a GPC or US opt-out (config `consent.whenGpc: limitedDataUse`). */
export const LIMITED_DATA_USE_REDACTION = 'limited_data_use';

/** Consent Mode signals whose denial reshapes an event (each through the template's `<signal>:denied` rule). */
const CONSENT_MODE_SIGNALS: readonly ConsentModeSignal[] = ['ad_user_data', 'ad_personalization'];

/** The reasons of a decision as stable text (explain, logs). */
export function reasonTexts(decision: Pick<Decision, 'reasons'>): string[] {
  return decision.reasons.map(reasonText);
}

/**
 * The policy: a pure function of (integrations object, consent state, destination, mode, the
 * destination's TCF verdict). It imports nothing but types: the consent step decodes and checks.
 *
 * Consent is looked at first and the Segment `integrations` object after it, as in Segment's
 * reconciliation table (seed segment-consent-in-connections.txt). The integrations object can
 * only narrow what consent allows: `true` never overrides missing consent (table rows 8-10).
 */
export function decide(
  integrations: Readonly<Record<string, unknown>>,
  consent: PolicyConsent,
  dest: PolicyDestination,
  mode: DataControlMode,
  tcf: TcfVerdict,
): Decision {
  const reasons: Reason[] = [];
  let outcome: Outcome = 'forward';
  let redactions: string[] = [];
  let unknown = false;

  if (mode === 'disabled') {
    reasons.push({ code: 'data_control_disabled' });
  } else if (tcf.kind === 'denied') {
    // A TCF requirement that fails denies, whatever the categories say: the vendor or a purpose
    // lacks its legal basis under the framework the site uses.
    reasons.push(...tcf.reasons);
    outcome = 'drop';
  } else if (dest.categories.length === 0) {
    reasons.push({ code: 'not_gated' });
  } else {
    const gate = gateByCategory(consent, dest, mode);
    reasons.push(...gate.reasons);
    unknown = gate.reasons.some((r) => r.code === 'consent_unknown' || r.code === 'opt_out_no_signal');
    if (gate.result === 'denied') {
      // A GPC opt-out alone may be served by the vendor's limited-data-use mode instead, where the
      // destination asks for it and its template has the rule; any other denial drops.
      const onlyGpc = gate.reasons.every((r) => r.code === 'gpc_opt_out');
      if (onlyGpc && dest.whenGpc === 'limitedDataUse' && dest.redactions.includes(LIMITED_DATA_USE_REDACTION)) {
        outcome = 'redact';
        redactions = [LIMITED_DATA_USE_REDACTION];
      } else outcome = 'drop';
    } else if (gate.result === 'unknown') {
      if (dest.whenUnknown === 'hold') outcome = 'hold';
      else if (dest.whenUnknown === 'redact' && dest.redactions.includes(CONSENT_UNKNOWN_REDACTION)) {
        outcome = 'redact';
        redactions = [CONSENT_UNKNOWN_REDACTION];
      } else {
        if (dest.whenUnknown === 'redact') reasons.push({ code: 'redaction_unavailable', redaction: CONSENT_UNKNOWN_REDACTION });
        outcome = 'drop';
      }
    }
  }

  // Reshape, never widen: a Consent Mode denial of ad_user_data or ad_personalization that the
  // categories let through is served by the template's `<signal>:denied` rule when it has one
  // (Google: with ad_user_data denied, conversions may be sent without user data). A template
  // without the rule is left as the categories decided: the site chose what those flags gate by
  // listing them, or not, in `site.categories.*.gcm`. Not in `disabled` mode, which gates nothing.
  if ((outcome === 'forward' || outcome === 'redact') && mode !== 'disabled') {
    for (const signal of CONSENT_MODE_SIGNALS) {
      const rule = `${signal}:denied`;
      if (consent.consentMode?.[signal] !== 'denied' || !dest.redactions.includes(rule)) continue;
      reasons.push({ code: 'consent_mode_denied', signal });
      redactions = [...redactions, rule];
      outcome = 'redact';
    }
  }

  if (outcome !== 'drop') {
    const routed = routeByIntegrations(integrations, dest);
    if (routed !== undefined) {
      reasons.push({ code: routed });
      outcome = 'drop';
      redactions = [];
      unknown = false;
    }
  }
  // Never empty: every branch above pushed at least one reason.
  const last = reasons[reasons.length - 1]!;
  const decision: Decision = { destinationId: dest.id, outcome, reason: last.code, metricLabel: reasonText(last), awaitsConsent: unknown, reasons, redactions };
  if ('category' in last) decision.category = last.category;
  return decision;
}

interface Gate {
  result: 'allowed' | 'denied' | 'unknown';
  reasons: Reason[];
}

function gateByCategory(consent: PolicyConsent, dest: PolicyDestination, mode: 'opt-out' | 'opt-in'): Gate {
  const allowed: Reason[] = [];
  const denied: Reason[] = [];
  const unknown: Reason[] = [];
  for (const c of dest.categories) {
    const status = consent.categories[c]?.status ?? 'unknown';
    if (status === 'granted') allowed.push({ code: 'consent_granted', category: c });
    else if (status === 'denied') {
      const reason: Reason = consent.categories[c]?.source === 'gpc' ? { code: 'gpc_opt_out', category: c } : { code: 'consent_denied', category: c };
      // One GPC reason for however many sale/share categories it denied.
      if (!denied.some((d) => reasonText(d) === reasonText(reason))) denied.push(reason);
    }
    else if (mode === 'opt-out') {
      // Opt-out: no consent object means no enforcement (table row 1); a consent object that does
      // not list the category means it is not consented (rows 2 and 4, "Reconcile CMP conflicts").
      if (consent.preferencesPresent) denied.push({ code: 'consent_absent', category: c });
      else allowed.push({ code: 'opt_out_no_signal', category: c });
    } else {
      unknown.push({ code: 'consent_unknown', category: c });
    }
  }
  if (dest.combine === 'all') {
    if (denied.length > 0) return { result: 'denied', reasons: denied };
    if (unknown.length > 0) return { result: 'unknown', reasons: unknown };
    return { result: 'allowed', reasons: allowed };
  }
  if (allowed.length > 0) return { result: 'allowed', reasons: allowed };
  if (unknown.length > 0) return { result: 'unknown', reasons: [...unknown, ...denied] };
  return { result: 'denied', reasons: denied };
}

/**
 * Returns the drop reason when the integrations object switches this destination off. A key for
 * the destination (its id or one of its integration names) wins over `All`; `false` disables,
 * `true` or an options object enables; other values are ignored. (https://segment.com/docs/guides/filtering-data/#filtering-with-the-integrations-object)
 */
function routeByIntegrations(integrations: Readonly<Record<string, unknown>>, dest: PolicyDestination): 'integrations_disabled' | 'integrations_all_false' | undefined {
  for (const key of [dest.id, ...dest.integrationNames]) {
    if (!Object.hasOwn(integrations, key)) continue;
    const v = integrations[key];
    if (v === false) return 'integrations_disabled';
    if (v === true || (v !== null && typeof v === 'object')) return undefined;
  }
  if (integrations.All === false) return 'integrations_all_false';
  return undefined;
}
