import { describe, expect, it } from 'vitest';
import { encodeWithLibrary, type ModelSpec } from '../../test/fixtures/tcf/build.ts';
import type { ConsentState } from '../consent/state.ts';
import { createTcfReader, type TcfResult } from '../consent/tcf.ts';
import { TCF_NOT_CHECKED, tcfVerdict } from '../consent/tcf-verdict.ts';
import { decide, reasonTexts, type DataControlMode, type PolicyDestination } from './decide.ts';

/** The policy with the signals beyond the Segment object: GPC and TCF requirements. */

const UPDATED = new Date(Date.UTC(2026, 0, 10));
const NOW = new Date(UPDATED.getTime() + 3_600_000);
const reader = createTcfReader({ maxLength: 2048, maxAgeMs: 395 * 86_400_000, cacheEntries: 10 });

function tcf(spec: ModelSpec): TcfResult {
  return reader.read(encodeWithLibrary({ lastUpdated: UPDATED, ...spec }), NOW);
}

const dest = (over: Partial<PolicyDestination> = {}): PolicyDestination => ({
  id: 'ads',
  categories: ['advertising'],
  combine: 'all',
  whenUnknown: 'drop',
  integrationNames: [],
  redactions: [],
  ...over,
});

function state(advertising: 'granted' | 'denied' | 'unknown', source = 'segment', extra: Partial<ConsentState> = {}): ConsentState {
  return { categories: { advertising: { status: advertising, source } }, preferencesPresent: true, ...extra };
}

/** As the pipeline calls it: the consent step checks the string, the policy reads the verdict. */
function decideWithTcf(integrations: Record<string, unknown>, consent: ConsentState, d: PolicyDestination, mode: DataControlMode) {
  return decide(integrations, consent, d, mode, tcfVerdict(consent.tcf, d.tcf));
}

const requirement = { vendorId: 7, basis: 'consent' as const, purposes: [1, 3] };
const good = tcf({ purposeConsents: [1, 3], vendorConsents: [7] });

describe('policy: Global Privacy Control', () => {
  it.each(['opt-in', 'opt-out'] as const)('a category GPC denied drops with gpc_opt_out (%s)', (mode) => {
    const d = decide({}, state('denied', 'gpc', { gpc: true }), dest(), mode, TCF_NOT_CHECKED);
    expect(d).toMatchObject({ outcome: 'drop', reason: 'gpc_opt_out', category: 'advertising', metricLabel: 'gpc_opt_out' });
    expect(reasonTexts(d)).toEqual(['gpc_opt_out']);
  });

  it('disabled mode gates nothing, GPC included', () => {
    expect(decide({}, state('denied', 'gpc', { gpc: true }), dest(), 'disabled', TCF_NOT_CHECKED).outcome).toBe('forward');
  });
});

describe('policy: TCF requirements', () => {
  it.each<[string, ConsentState['tcf'], 'forward' | 'drop', string[]]>([
    ['TCF does not apply: not checked', { applies: false }, 'forward', ['consent_granted:advertising']],
    ['gdpr=1 without a string', { applies: true }, 'drop', ['tcf_missing']],
    ['an invalid string', { applies: true, result: { ok: false, reason: 'tcf_expired' } }, 'drop', ['tcf_invalid:tcf_expired']],
    ['vendor and purposes consented', { applies: true, result: good }, 'forward', ['consent_granted:advertising']],
    ['the vendor missing', { applies: true, result: tcf({ purposeConsents: [1, 3], vendorConsents: [8] }) }, 'drop', ['tcf_vendor_not_consented:7']],
    ['a purpose missing', { applies: true, result: tcf({ purposeConsents: [1], vendorConsents: [7] }) }, 'drop', ['tcf_purpose_not_consented:3']],
  ])('%s', (_name, tcfContext, outcome, reasons) => {
    const d = decideWithTcf({}, state('granted', 'segment', { tcf: tcfContext }), dest({ tcf: requirement }), 'opt-in');
    expect(d.outcome).toBe(outcome);
    expect(reasonTexts(d)).toEqual(reasons);
    expect(d.metricLabel).toBe(reasons.at(-1));
  });

  it('a TCF denial wins over an unknown category that would be held', () => {
    const d = decideWithTcf({}, state('unknown', 'none', { tcf: { applies: true } }), dest({ tcf: requirement, whenUnknown: 'hold' }), 'opt-in');
    expect(d).toMatchObject({ outcome: 'drop', reason: 'tcf_missing', awaitsConsent: false, reasons: [{ code: 'tcf_missing' }] });
    expect(d.category).toBeUndefined();
  });

  it.each<DataControlMode>(['opt-in', 'opt-out'])('a destination without a TCF requirement ignores the string (%s)', (mode) => {
    const d = decideWithTcf({}, state('granted', 'segment', { tcf: { applies: true } }), dest(), mode);
    expect(d.outcome).toBe('forward');
  });

  it('the integrations object still applies after a TCF pass', () => {
    const d = decideWithTcf({ ads: false }, state('granted', 'segment', { tcf: { applies: true, result: good } }), dest({ tcf: requirement }), 'opt-in');
    expect(d).toMatchObject({ outcome: 'drop', reason: 'integrations_disabled', metricLabel: 'integrations_disabled' });
    expect(reasonTexts(d)).toEqual(['consent_granted:advertising', 'integrations_disabled']);
  });
});
