import type { ConsentState } from './state.ts';
import { checkTcf, type TcfDenial, type TcfFailureReason, type TcfRequirement } from './tcf.ts';

/** Why TCF denies a destination: no string, an unusable one, or a requirement the string does not meet. */
export type TcfReason = { code: 'tcf_missing' } | { code: 'tcf_invalid'; failure: TcfFailureReason } | TcfDenial;

/**
 * A destination's TCF requirement checked against the hit's decoded string: plain data, so the
 * policy (src/policy/decide.ts) decides without the decoder. `not_checked`: the destination has no
 * requirement, or TCF does not apply to the hit.
 */
export type TcfVerdict = { kind: 'not_checked' } | { kind: 'allowed' } | { kind: 'denied'; reasons: readonly TcfReason[] };

export const TCF_NOT_CHECKED: TcfVerdict = Object.freeze({ kind: 'not_checked' });

/**
 * TCF applies when the hit says `gdpr=1` or carries a string (without `gdpr=0`), see
 * ./resolve.ts; then a missing or invalid string denies.
 */
export function tcfVerdict(tcf: ConsentState['tcf'], requirement: TcfRequirement | undefined): TcfVerdict {
  if (requirement === undefined || tcf?.applies !== true) return TCF_NOT_CHECKED;
  const result = tcf.result;
  if (result === undefined) return { kind: 'denied', reasons: [{ code: 'tcf_missing' }] };
  if (!result.ok) return { kind: 'denied', reasons: [{ code: 'tcf_invalid', failure: result.reason }] };
  const check = checkTcf(result.tcf, requirement);
  return check.allowed ? { kind: 'allowed' } : { kind: 'denied', reasons: check.denials };
}
