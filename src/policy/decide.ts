import type { ConsentState } from '../consent/state.ts';
import { checkTcf, type TcfRequirement } from '../consent/tcf.ts';

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
  /** Keys of the Segment integrations object that address this destination besides its id. */
  integrationNames: readonly string[];
  /** Redaction rules the destination's template defines. */
  redactions: readonly string[];
  /** An IAB TCF requirement, checked when TCF applies to the hit. */
  tcf?: TcfRequirement | undefined;
}

export interface Decision {
  destinationId: string;
  outcome: Outcome;
  /** Machine-readable, stable reasons, e.g. `consent_denied:advertising`, `integrations_disabled`. */
  reasons: string[];
  /** Template redaction rules to apply when the outcome is `redact`. */
  redactions: string[];
}

/** The redaction rule a template defines to serve `whenUnknown: redact`. */
export const CONSENT_UNKNOWN_REDACTION = 'consent_unknown';

/**
 * The policy: a pure function of (integrations object, consent state, destination, mode).
 *
 * Consent is looked at first and the Segment `integrations` object after it, as in Segment's
 * reconciliation table (seed segment-consent-in-connections.txt). The integrations object can
 * only narrow what consent allows: `true` never overrides missing consent (table rows 8-10).
 */
export function decide(
  integrations: Readonly<Record<string, unknown>>,
  consent: ConsentState,
  dest: PolicyDestination,
  mode: DataControlMode,
): Decision {
  const reasons: string[] = [];
  let outcome: Outcome = 'forward';
  let redactions: string[] = [];

  const tcfDenial = mode === 'disabled' ? undefined : tcfGate(consent, dest);
  if (mode === 'disabled') {
    reasons.push('data_control_disabled');
  } else if (tcfDenial !== undefined) {
    // A TCF requirement that fails denies, whatever the categories say: the vendor or a purpose
    // lacks its legal basis under the framework the site uses.
    reasons.push(...tcfDenial);
    outcome = 'drop';
  } else if (dest.categories.length === 0) {
    reasons.push('not_gated');
  } else {
    const gate = gateByCategory(consent, dest, mode);
    reasons.push(...gate.reasons);
    if (gate.result === 'denied') {
      outcome = 'drop';
    } else if (gate.result === 'unknown') {
      if (dest.whenUnknown === 'hold') outcome = 'hold';
      else if (dest.whenUnknown === 'redact' && dest.redactions.includes(CONSENT_UNKNOWN_REDACTION)) {
        outcome = 'redact';
        redactions = [CONSENT_UNKNOWN_REDACTION];
      } else {
        if (dest.whenUnknown === 'redact') reasons.push(`redaction_unavailable:${CONSENT_UNKNOWN_REDACTION}`);
        outcome = 'drop';
      }
    }
  }

  if (outcome !== 'drop') {
    const routed = routeByIntegrations(integrations, dest);
    if (routed !== undefined) {
      reasons.push(routed);
      outcome = 'drop';
      redactions = [];
    }
  }
  return { destinationId: dest.id, outcome, reasons, redactions };
}

/**
 * The destination's TCF requirement against the hit's TCF string: undefined when it passes or
 * does not apply, else the reasons for denying. TCF applies when the hit says `gdpr=1` or carries
 * a string (without `gdpr=0`); then a missing or invalid string denies.
 */
function tcfGate(consent: ConsentState, dest: PolicyDestination): string[] | undefined {
  if (dest.tcf === undefined || consent.tcf?.applies !== true) return undefined;
  const result = consent.tcf.result;
  if (result === undefined) return ['tcf_missing'];
  if (!result.ok) return [`tcf_invalid:${result.reason}`];
  const check = checkTcf(result.tcf, dest.tcf);
  return check.allowed ? undefined : check.reasons;
}

interface Gate {
  result: 'allowed' | 'denied' | 'unknown';
  reasons: string[];
}

function gateByCategory(consent: ConsentState, dest: PolicyDestination, mode: 'opt-out' | 'opt-in'): Gate {
  const allowed: string[] = [];
  const denied: string[] = [];
  const unknown: string[] = [];
  for (const c of dest.categories) {
    const status = consent.categories[c]?.status ?? 'unknown';
    if (status === 'granted') allowed.push(`consent_granted:${c}`);
    else if (status === 'denied') {
      const reason = consent.categories[c]?.source === 'gpc' ? 'gpc_opt_out' : `consent_denied:${c}`;
      if (!denied.includes(reason)) denied.push(reason);
    }
    else if (mode === 'opt-out') {
      // Opt-out: no consent object means no enforcement (table row 1); a consent object that does
      // not list the category means it is not consented (rows 2 and 4, "Reconcile CMP conflicts").
      if (consent.preferencesPresent) denied.push(`consent_absent:${c}`);
      else allowed.push(`opt_out_no_signal:${c}`);
    } else {
      unknown.push(`consent_unknown:${c}`);
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
function routeByIntegrations(integrations: Readonly<Record<string, unknown>>, dest: PolicyDestination): string | undefined {
  for (const key of [dest.id, ...dest.integrationNames]) {
    if (!Object.hasOwn(integrations, key)) continue;
    const v = integrations[key];
    if (v === false) return 'integrations_disabled';
    if (v === true || (v !== null && typeof v === 'object')) return undefined;
  }
  if (integrations.All === false) return 'integrations_all_false';
  return undefined;
}
