import type { ConsentModeSignal } from '../consent/state.ts';
import type { TcfReason } from '../consent/tcf-verdict.ts';

/** Reasons about one required site category. */
export type CategoryReasonCode = 'consent_granted' | 'consent_denied' | 'consent_absent' | 'consent_unknown' | 'opt_out_no_signal' | 'gpc_opt_out';

/** Every rule the policy can apply, with the data it names: a closed union callers switch on. */
export type Reason =
  | { code: 'data_control_disabled' | 'not_gated' | 'integrations_disabled' | 'integrations_all_false' }
  | { code: CategoryReasonCode; category: string }
  | { code: 'redaction_unavailable'; redaction: string }
  /**
   * The rendered event breaks a limit its vendor documents (the template's `rules.checks`, e.g.
   * GA4's 40-character event names, Meta's 7-day event_time): dropped rather than sent to be
   * silently discarded or to fail its batch. `rule` is the check's id in template.json.
   */
  | { code: 'vendor_rule'; rule: string }
  /**
   * The hit's Google Consent Mode denied `ad_user_data` or `ad_personalization` while the
   * destination's categories allow it: the event is reshaped by the template's `<signal>:denied`
   * rule (user data stripped, personalisation flags off) instead of being dropped or sent whole.
   * https://developers.google.com/tag-platform/security/concepts/consent-mode
   */
  | { code: 'consent_mode_denied'; signal: ConsentModeSignal }
  | TcfReason;

export type ReasonCode = Reason['code'];

/**
 * The stable text of a reason (`consent_denied:advertising`, `tcf_vendor_not_consented:755`,
 * `gpc_opt_out`, `vendor_rule:ga4_event_name`…): what the explain API answers, the drop log writes and
 * `tagwarden_decisions_total{reason}` counts. The one place it is spelled (docs/policy.md lists them).
 */
export function reasonText(r: Reason): string {
  switch (r.code) {
    case 'data_control_disabled':
    case 'not_gated':
    case 'integrations_disabled':
    case 'integrations_all_false':
    case 'tcf_missing':
    case 'gpc_opt_out': // one GPC reason, whichever sale/share categories it denied
      return r.code;
    case 'consent_granted':
    case 'consent_denied':
    case 'consent_absent':
    case 'consent_unknown':
    case 'opt_out_no_signal':
      return `${r.code}:${r.category}`;
    case 'redaction_unavailable':
      return `${r.code}:${r.redaction}`;
    case 'vendor_rule':
      return `${r.code}:${r.rule}`;
    case 'consent_mode_denied':
      return `${r.code}:${r.signal}`;
    case 'tcf_invalid':
      return `${r.code}:${r.failure}`;
    default:
      return `${r.code}:${String(r.id)}`;
  }
}
