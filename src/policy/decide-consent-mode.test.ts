import { describe, expect, it } from 'vitest';
import { TCF_NOT_CHECKED } from '../consent/tcf-verdict.ts';
import type { ConsentState } from '../consent/state.ts';
import { decide, reasonTexts, type DataControlMode, type PolicyDestination } from './decide.ts';

/**
 * Consent Mode v2's ad_user_data and ad_personalization reshape rather than gate (issue 14,
 * "Reshape, as tables"): a denial the categories let through is served by the template's
 * `<signal>:denied` rule. A table: (categories, Consent Mode flags, template rules, mode) → outcome.
 */
const META: PolicyDestination = {
  id: 'meta',
  categories: ['advertising'],
  combine: 'all',
  whenUnknown: 'redact',
  integrationNames: [],
  redactions: ['consent_unknown', 'ad_user_data:denied', 'ad_personalization:denied', 'limited_data_use'],
};

function consent(advertising: 'granted' | 'denied' | 'unknown', consentMode?: ConsentState['consentMode']): ConsentState {
  const state: ConsentState = { categories: { advertising: { status: advertising, source: 'gcm' } }, preferencesPresent: false };
  if (consentMode !== undefined) state.consentMode = consentMode;
  return state;
}

const rows: [string, ConsentState, PolicyDestination, DataControlMode, string, string[], string[]][] = [
  ['granted, no Consent Mode: sent whole', consent('granted'), META, 'opt-in', 'forward', [], ['consent_granted:advertising']],
  ['granted, both flags granted: sent whole', consent('granted', { ad_user_data: 'granted', ad_personalization: 'granted' }), META, 'opt-in', 'forward', [], ['consent_granted:advertising']],
  ['ad_user_data denied: user data stripped', consent('granted', { ad_user_data: 'denied' }), META, 'opt-in', 'redact', ['ad_user_data:denied'], ['consent_granted:advertising', 'consent_mode_denied:ad_user_data']],
  ['ad_personalization denied: personalisation off', consent('granted', { ad_personalization: 'denied' }), META, 'opt-in', 'redact', ['ad_personalization:denied'], ['consent_granted:advertising', 'consent_mode_denied:ad_personalization']],
  ['both denied: both rules', consent('granted', { ad_user_data: 'denied', ad_personalization: 'denied' }), META, 'opt-in', 'redact', ['ad_user_data:denied', 'ad_personalization:denied'], ['consent_granted:advertising', 'consent_mode_denied:ad_user_data', 'consent_mode_denied:ad_personalization']],
  ['unknown category redacted, ad_user_data denied too', consent('unknown', { ad_user_data: 'denied' }), META, 'opt-in', 'redact', ['consent_unknown', 'ad_user_data:denied'], ['consent_unknown:advertising', 'consent_mode_denied:ad_user_data']],
  ['category denied: still dropped (a reshape never widens)', consent('denied', { ad_user_data: 'denied' }), META, 'opt-in', 'drop', [], ['consent_denied:advertising']],
  ['a template without the rule: as the categories decided', consent('granted', { ad_user_data: 'denied' }), { ...META, redactions: [] }, 'opt-in', 'forward', [], ['consent_granted:advertising']],
  ['opt-out mode reshapes too', consent('granted', { ad_user_data: 'denied' }), META, 'opt-out', 'redact', ['ad_user_data:denied'], ['consent_granted:advertising', 'consent_mode_denied:ad_user_data']],
  ['disabled mode gates and reshapes nothing', consent('denied', { ad_user_data: 'denied' }), META, 'disabled', 'forward', [], ['data_control_disabled']],
  ['a destination not gated by category is reshaped', consent('granted', { ad_user_data: 'denied' }), { ...META, categories: [] }, 'opt-in', 'redact', ['ad_user_data:denied'], ['not_gated', 'consent_mode_denied:ad_user_data']],
];

function gpc(): ConsentState {
  return { categories: { advertising: { status: 'denied', source: 'gpc' } }, preferencesPresent: false, gpc: true };
}

const gpcRows: [string, ConsentState, PolicyDestination, string, string[]][] = [
  ['GPC, whenGpc absent: dropped', gpc(), META, 'drop', []],
  ['GPC, whenGpc drop: dropped', gpc(), { ...META, whenGpc: 'drop' }, 'drop', []],
  ['GPC, whenGpc limitedDataUse: sent with limited data use', gpc(), { ...META, whenGpc: 'limitedDataUse' }, 'redact', ['limited_data_use']],
  ['GPC, limitedDataUse but the template has no such rule: dropped', gpc(), { ...META, whenGpc: 'limitedDataUse', redactions: [] }, 'drop', []],
  ['a consent denial is never turned into limited data use', consent('denied'), { ...META, whenGpc: 'limitedDataUse' }, 'drop', []],
  [
    'GPC and another required category denied: dropped',
    { categories: { advertising: { status: 'denied', source: 'gpc' }, analytics: { status: 'denied', source: 'segment' } }, preferencesPresent: true, gpc: true },
    { ...META, categories: ['advertising', 'analytics'], whenGpc: 'limitedDataUse' },
    'drop',
    [],
  ],
];

describe('GPC opt-out: drop, or the vendor\'s limited data use when the destination asks for it', () => {
  it.each(gpcRows)('%s', (_name, state, dest, outcome, redactions) => {
    const d = decide({}, state, dest, 'opt-in', TCF_NOT_CHECKED);
    expect(d.outcome).toBe(outcome);
    expect(d.redactions).toEqual(redactions);
  });
});

describe('Consent Mode reshapes (ad_user_data, ad_personalization)', () => {
  it.each(rows)('%s', (_name, state, dest, mode, outcome, redactions, reasons) => {
    const d = decide({}, state, dest, mode, TCF_NOT_CHECKED);
    expect(d.outcome).toBe(outcome);
    expect(d.redactions).toEqual(redactions);
    expect(reasonTexts(d)).toEqual(reasons);
  });

  it('the integrations object switching the destination off still drops, reshape or not', () => {
    const d = decide({ meta: false }, consent('granted', { ad_user_data: 'denied' }), META, 'opt-in', TCF_NOT_CHECKED);
    expect(d).toMatchObject({ outcome: 'drop', redactions: [], reason: 'integrations_disabled' });
  });
});
