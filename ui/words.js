// Plain words for what the server reports in codes: outcomes, decision reasons, counts. The page
// shows the words and keeps the code beside them (people ask support about the code).

/** The overview's counts, in the order the table and chart show them (GET /ui/api/overview). */
export const COUNTS = /** @type {const} */ (['received', 'forwarded', 'redacted', 'held', 'filtered', 'failed', 'delivered', 'retried', 'dead', 'revoked']);

/** @type {Record<string, { label: string, help: string, color: string }>} */
export const COUNT_WORDS = {
  received: { label: 'Received', help: 'Events that arrived for this destination.', color: '#4b5563' },
  forwarded: { label: 'Forwarded', help: 'Let through and handed to the vendor as they were.', color: '#15803d' },
  redacted: { label: 'Without personal data', help: 'Handed to the vendor with personal data removed, because consent was limited.', color: '#0e7490' },
  held: { label: 'Waiting for consent', help: 'Held until the visitor makes a consent choice. In the table: how many wait right now; in the chart: how many started waiting less how many were decided.', color: '#a16207' },
  filtered: { label: 'Filtered', help: 'Not sent: the visitor did not consent, or a rule (the event itself, the template, a vendor limit) kept it back. The reasons are listed below.', color: '#7c3aed' },
  failed: { label: 'Failed', help: 'Could not be prepared for the vendor, or the delivery queue was full.', color: '#b91c1c' },
  delivered: { label: 'Delivered', help: 'The vendor accepted them.', color: '#166534' },
  retried: { label: 'Retried', help: 'Sending was tried again after the vendor did not accept it (counted per try).', color: '#c2410c' },
  dead: { label: 'Gave up', help: 'The vendor kept refusing: the event is in Dead letters, where you can send it again.', color: '#1f2937' },
  revoked: { label: 'Withdrawn', help: 'Not delivered because the visitor withdrew consent before it went out.', color: '#6d28d9' },
};

/** True for the reasons that are the visitor's consent (the rest are rules of the event, template or vendor). */
export function consentReason(/** @type {string} */ reason) {
  return /^(consent_|gpc_|tcf_)/.test(reason);
}

/** @type {Record<string, string>} */
const OUTCOMES = {
  forward: 'Forwarded',
  redact: 'Forwarded without personal data',
  hold: 'Waiting for consent',
  drop: 'Not sent',
  failed: 'Failed',
};

/** @param {string} outcome */
export function outcomeText(outcome) {
  return OUTCOMES[outcome] ?? outcome;
}

/** The outcome's CSS class (colour and icon); unknown outcomes get none. */
export function outcomeClass(/** @type {string} */ outcome) {
  return Object.hasOwn(OUTCOMES, outcome) ? `outcome outcome-${outcome}` : 'outcome';
}

/** @type {[RegExp, (m: RegExpExecArray) => string][]} */
const REASONS = [
  [/^consent_denied:(.+)$/, (m) => `Filtered by visitor consent: “${m[1]}” was declined`],
  [/^consent_unknown:(.+)$/, (m) => `No consent choice yet for “${m[1]}”`],
  [/^consent_absent:(.+)$/, (m) => `The consent choice did not include “${m[1]}”`],
  [/^consent_granted:(.+)$/, (m) => `Visitor consented to “${m[1]}”`],
  [/^opt_out_no_signal:(.+)$/, (m) => `No opt-out for “${m[1]}” (opt-out site)`],
  [/^consent_mode_denied:(.+)$/, (m) => `Google Consent Mode denies ${m[1]}`],
  [/^gpc_opt_out$/, () => 'The browser asked not to sell or share data (Global Privacy Control)'],
  [/^tcf_missing$/, () => 'No IAB TCF consent string on a GDPR visit'],
  [/^tcf_invalid:(.+)$/, (m) => `The IAB TCF consent string could not be used (${m[1]})`],
  [/^tcf_vendor_not_consented:(.+)$/, (m) => `The IAB TCF consent string does not allow vendor ${m[1]}`],
  [/^tcf_purpose_not_consented:(.+)$/, (m) => `The IAB TCF consent string does not allow purpose ${m[1]}`],
  [/^tcf_(.+)$/, (m) => `The IAB TCF consent string does not allow it (${m[1]})`],
  [/^preview_silent$/, () => 'Preview (silent): decided, not sent to the vendor'],
  [/^preview_no_test_code$/, () => 'Preview: no test event code for this destination, so it was not sent'],
  [/^preview_no_test_mode$/, () => 'Preview: this vendor has no test mode, so it was not sent'],
  [/^consent_resolving$/, () => 'Looking up the visitor’s consent'],
  [/^consent_unresolved$/, () => 'The visitor’s consent could not be found in time'],
  [/^not_gated$/, () => 'This destination needs no consent'],
  [/^data_control_disabled$/, () => 'Consent checks are switched off for the site'],
  [/^integrations_(disabled|all_false)$/, () => 'The event itself turned this destination off'],
  [/^redaction_unavailable:.+$/, () => 'Personal data could not be removed for this destination, so it was not sent'],
  [/^queue_full$/, () => 'The delivery queue was full'],
  [/^render_error$/, () => 'The event could not be prepared for this vendor'],
  [/^no_mapping:(.+)$/, (m) => `This destination does not take “${m[1]}” events`],
  [/^vendor_rule:(.+)$/, (m) => `The vendor would refuse it (rule ${m[1]})`],
  [/^ga4_(automatic|reserved)_event$/, () => 'An automatic event this vendor should not get'],
];

/** A decision reason in plain words (the code itself when it is not one we know). */
export function reasonText(/** @type {string | null | undefined} */ reason) {
  if (reason === null || reason === undefined || reason === '') return '';
  for (const [re, words] of REASONS) {
    const m = re.exec(reason);
    if (m !== null) return words(m);
  }
  return reason;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A time (ms, or an ISO string) for people; "" when there is none. */
export function when(/** @type {number | string | null | undefined} */ t, /** @type {boolean} */ short = false) {
  if (t === null || t === undefined || t === '') return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return (short ? timeOnly : dateTime).format(d);
}

/** The machine-readable form for <time datetime>. */
export function isoOf(/** @type {number | string | null | undefined} */ t) {
  if (t === null || t === undefined || t === '') return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

const integer = new Intl.NumberFormat();
export function count(/** @type {number} */ n) {
  return integer.format(n);
}
