import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consentFromSegment } from '../consent/segment.ts';
import type { Event } from '../ingest/event.ts';
import { TCF_NOT_CHECKED } from '../consent/tcf-verdict.ts';
import { decide, reasonTexts, type DataControlMode, type Decision, type PolicyDestination, type WhenUnknown } from './decide.ts';

/**
 * The reconciliation table of seed segment-consent-in-connections.txt, row by row, in opt-out
 * mode. Destinations: facebook, google-ads and amplitude are mapped as each row says; `webhook` is
 * never mapped to a category (the table's "destinations NOT mapped to a consent category").
 */

type Mapping = Record<string, string[]>; // site category -> destination ids

function event(context: Record<string, unknown>, integrations?: Record<string, unknown>): Event {
  return {
    messageId: 'm1',
    type: 'track',
    event: 'Order Completed',
    timestamp: '2026-01-01T00:00:00.000Z',
    receivedAt: '2026-01-01T00:00:00.000Z',
    anonymousId: 'a1',
    context,
    properties: {},
    traits: {},
    integrations: integrations ?? {},
  };
}

const ALL_DESTS = ['facebook', 'google-ads', 'amplitude', 'webhook'];

function receivers(
  ev: Event,
  mapping: Mapping,
  opts: { siteCategories?: string[]; mode?: DataControlMode } = {},
): string[] {
  const siteCategories = opts.siteCategories ?? Object.keys(mapping);
  const categories = Object.fromEntries(siteCategories.map((c) => [c, {}]));
  const state = consentFromSegment(ev, categories);
  return ALL_DESTS.filter((id) => {
    const dest: PolicyDestination = {
      id,
      categories: Object.entries(mapping)
        .filter(([, ds]) => ds.includes(id))
        .map(([c]) => c),
      combine: 'all',
      whenUnknown: 'drop',
      integrationNames: [],
      redactions: [],
    };
    return decide(ev.integrations, state, dest, opts.mode ?? 'opt-out', TCF_NOT_CHECKED).outcome === 'forward';
  });
}

const adAnalytics: Mapping = { ad: ['facebook', 'google-ads'], analytics: ['amplitude'] };
const overlapping: Mapping = { ad: ['facebook', 'google-ads'], analytics: ['facebook', 'amplitude'] };

describe('Segment reconciliation table (opt-out)', () => {
  it.each([
    ['row 1: no consent object, no integrations', {}, undefined],
    ['row 1: empty consent object, no integrations', { consent: {} }, undefined],
    ['row 1: no consent object, empty integrations', {}, {}],
  ])('%s: data flows to all destinations', (_name, context, integrations) => {
    expect(receivers(event(context, integrations), adAnalytics)).toEqual(ALL_DESTS);
  });

  it('row 2: empty categoryPreferences: no mapped destination, every unmapped one', () => {
    const ev = event({ consent: { categoryPreferences: {} } });
    expect(receivers(ev, adAnalytics)).toEqual(['webhook']);
  });

  it('row 3: no consent object, {facebook: true, amplitude: false}: amplitude is off, the rest flow', () => {
    // Destinations absent from the integrations object follow `All`, which defaults to true.
    const ev = event({}, { facebook: true, amplitude: false });
    expect(receivers(ev, adAnalytics)).toEqual(['facebook', 'google-ads', 'webhook']);
  });

  it('row 4: empty categoryPreferences with {facebook: true, amplitude: false}: only unmapped destinations', () => {
    // `true` in the integrations object does not override missing consent (rows 9-11 say so too).
    const ev = event({ consent: { categoryPreferences: {} } }, { facebook: true, amplitude: false });
    expect(receivers(ev, adAnalytics)).toEqual(['webhook']);
  });

  it('row 4: unmapped destinations follow the integrations object', () => {
    const ev = event({ consent: { categoryPreferences: {} } }, { webhook: false });
    expect(receivers(ev, adAnalytics)).toEqual([]);
  });

  it('row 5: categories unknown to the site: every destination is unmapped and flows', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } });
    expect(receivers(ev, {}, { siteCategories: ['advertising'] })).toEqual(ALL_DESTS);
  });

  it('row 5: ... and the integrations object still applies', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } }, { facebook: true, amplitude: false });
    expect(receivers(ev, {}, { siteCategories: ['advertising'] })).toEqual(['facebook', 'google-ads', 'webhook']);
  });

  it('row 6: {ad: true, analytics: false}: ad destinations flow, analytics ones do not', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } });
    expect(receivers(ev, adAnalytics)).toEqual(['facebook', 'google-ads', 'webhook']);
  });

  it('row 7: ... with {facebook: true, amplitude: false}: Google Ads flows although absent from integrations', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } }, { facebook: true, amplitude: false });
    expect(receivers(ev, adAnalytics)).toEqual(['facebook', 'google-ads', 'webhook']);
  });

  it('row 8: ... with {facebook: false, amplitude: false}: only Google Ads of the mapped ones', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } }, { facebook: false, amplitude: false });
    expect(receivers(ev, adAnalytics)).toEqual(['google-ads', 'webhook']);
  });

  it('row 9: facebook mapped to ad and analytics, analytics false: only Google Ads', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } }, { facebook: true, amplitude: false });
    expect(receivers(ev, overlapping)).toEqual(['google-ads', 'webhook']);
  });

  it('row 10: both true: Facebook and Google Ads, not Amplitude (false in integrations)', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: true } } }, { facebook: true, amplitude: false });
    expect(receivers(ev, overlapping)).toEqual(['facebook', 'google-ads', 'webhook']);
  });

  it('row 11: {ad: false, analytics: true}: no mapped destination at all', () => {
    const ev = event({ consent: { categoryPreferences: { ad: false, analytics: true } } }, { facebook: true, amplitude: false });
    expect(receivers(ev, overlapping)).toEqual(['webhook']);
  });

  it('CMP category unknown to the site is ignored; a site category the CMP does not send blocks its destinations', () => {
    // "Reconcile CMP and Segment consent category conflicts": the CMP sends `advertising` (unknown
    // here) and nothing for `functional`, so destinations mapped to `functional` get nothing.
    const ev = event({ consent: { categoryPreferences: { advertising: true } } });
    const mapping: Mapping = { functional: ['amplitude'] };
    expect(receivers(ev, mapping)).toEqual(['facebook', 'google-ads', 'webhook']);
  });

  it('integrations All: false: only destinations set to true, still subject to consent', () => {
    const ev = event({ consent: { categoryPreferences: { ad: true, analytics: false } } }, { All: false, facebook: true, amplitude: true });
    expect(receivers(ev, adAnalytics)).toEqual(['facebook']);
  });

  it('an integrations options object enables like true', () => {
    const ev = event({}, { All: false, webhook: { someOption: 1 } });
    expect(receivers(ev, adAnalytics)).toEqual(['webhook']);
  });
});

describe('reasons', () => {
  const dest: PolicyDestination = {
    id: 'meta',
    categories: ['advertising'],
    combine: 'all',
    whenUnknown: 'drop',
    integrationNames: ['Facebook Conversions API'],
    redactions: ['consent_unknown'],
  };
  const cats = { advertising: {}, analytics: {} };

  it.each<[string, Record<string, unknown>, Record<string, unknown>, DataControlMode, Partial<PolicyDestination>, string, string[]]>([
    ['granted', { advertising: true }, {}, 'opt-in', {}, 'forward', ['consent_granted:advertising']],
    ['denied', { advertising: false }, {}, 'opt-in', {}, 'drop', ['consent_denied:advertising']],
    ['invalid value revokes', { advertising: 'yes' }, {}, 'opt-in', {}, 'drop', ['consent_denied:advertising']],
    ['unknown, drop', {}, {}, 'opt-in', {}, 'drop', ['consent_unknown:advertising']],
    ['unknown, hold', {}, {}, 'opt-in', { whenUnknown: 'hold' }, 'hold', ['consent_unknown:advertising']],
    ['unknown, redact', {}, {}, 'opt-in', { whenUnknown: 'redact' }, 'redact', ['consent_unknown:advertising']],
    [
      'unknown, redact without a template rule drops',
      {},
      {},
      'opt-in',
      { whenUnknown: 'redact', redactions: [] },
      'drop',
      ['consent_unknown:advertising', 'redaction_unavailable:consent_unknown'],
    ],
    ['opt-out absent from object', { analytics: true }, {}, 'opt-out', {}, 'drop', ['consent_absent:advertising']],
    ['disabled mode', { advertising: false }, {}, 'disabled', {}, 'forward', ['data_control_disabled']],
    ['disabled mode still honours integrations', {}, { meta: false }, 'disabled', {}, 'drop', ['data_control_disabled', 'integrations_disabled']],
    ['integration name alias', { advertising: true }, { 'Facebook Conversions API': false }, 'opt-in', {}, 'drop', ['consent_granted:advertising', 'integrations_disabled']],
    ['All false', { advertising: true }, { All: false }, 'opt-in', {}, 'drop', ['consent_granted:advertising', 'integrations_all_false']],
    ['not gated', {}, {}, 'opt-in', { categories: [] }, 'forward', ['not_gated']],
    ['any: one granted is enough', { advertising: false, analytics: true }, {}, 'opt-in', { categories: ['advertising', 'analytics'], combine: 'any' }, 'forward', ['consent_granted:analytics']],
    ['any: none granted, one unknown', { advertising: false }, {}, 'opt-in', { categories: ['advertising', 'analytics'], combine: 'any' }, 'drop', ['consent_unknown:analytics', 'consent_denied:advertising']],
    ['all: denied beats unknown', { advertising: false }, {}, 'opt-in', { categories: ['advertising', 'analytics'], whenUnknown: 'hold' }, 'drop', ['consent_denied:advertising']],
  ])('%s', (_name, prefs, integrations, mode, override, outcome, reasons) => {
    const ev = event({ consent: { categoryPreferences: prefs } }, integrations);
    const d = decide(ev.integrations, consentFromSegment(ev, cats), { ...dest, ...override }, mode, TCF_NOT_CHECKED);
    expect(d.outcome).toBe(outcome);
    expect(reasonTexts(d)).toEqual(reasons);
    expect(d.redactions).toEqual(outcome === 'redact' ? ['consent_unknown'] : []);
  });

  // The typed fields callers switch on: the settling rule, its category, the metric label, and
  // whether consent from elsewhere (the upstream) could change the decision.
  it.each<[string, Record<string, unknown> | undefined, Record<string, unknown>, DataControlMode, Partial<PolicyDestination>, Partial<Decision>]>([
    ['granted', { advertising: true }, {}, 'opt-in', {}, { reason: 'consent_granted', category: 'advertising', metricLabel: 'consent_granted:advertising', awaitsConsent: false }],
    ['unknown, held', {}, {}, 'opt-in', { whenUnknown: 'hold' }, { outcome: 'hold', reason: 'consent_unknown', category: 'advertising', awaitsConsent: true }],
    ['unknown, redaction unavailable', {}, {}, 'opt-in', { whenUnknown: 'redact', redactions: [] }, { outcome: 'drop', reason: 'redaction_unavailable', category: undefined, metricLabel: 'redaction_unavailable:consent_unknown', awaitsConsent: true }],
    ['unknown, but the integrations object drops it', {}, { meta: false }, 'opt-in', { whenUnknown: 'hold' }, { outcome: 'drop', reason: 'integrations_disabled', category: undefined, awaitsConsent: false }],
    ['opt-out without a consent object', undefined, {}, 'opt-out', {}, { outcome: 'forward', reason: 'opt_out_no_signal', category: 'advertising', awaitsConsent: true }],
    ['denied wins over unknown: nothing to wait for', { advertising: false }, {}, 'opt-in', { categories: ['advertising', 'analytics'] }, { outcome: 'drop', reason: 'consent_denied', awaitsConsent: false }],
    ['any: unknown and denied', { advertising: false }, {}, 'opt-in', { categories: ['advertising', 'analytics'], combine: 'any' }, { reason: 'consent_denied', category: 'advertising', metricLabel: 'consent_denied:advertising', awaitsConsent: true }],
    ['not gated', {}, {}, 'opt-in', { categories: [] }, { reason: 'not_gated', category: undefined, metricLabel: 'not_gated', awaitsConsent: false }],
    ['disabled', {}, {}, 'disabled', {}, { reason: 'data_control_disabled', awaitsConsent: false }],
  ])('typed fields: %s', (_name, prefs, integrations, mode, override, expected) => {
    const ev = event(prefs === undefined ? {} : { consent: { categoryPreferences: prefs } }, integrations);
    const d = decide(ev.integrations, consentFromSegment(ev, cats), { ...dest, ...override }, mode, TCF_NOT_CHECKED);
    expect({ ...d, category: d.category }).toMatchObject(expected);
  });

  it('opt-in: a missing consent object is unknown for every mapped category', () => {
    const ev = event({});
    const d = decide({}, consentFromSegment(ev, cats), dest, 'opt-in', TCF_NOT_CHECKED);
    expect(d).toEqual({
      destinationId: 'meta',
      outcome: 'drop',
      reason: 'consent_unknown',
      category: 'advertising',
      metricLabel: 'consent_unknown:advertising',
      awaitsConsent: true,
      reasons: [{ code: 'consent_unknown', category: 'advertising' }],
      redactions: [],
    });
  });

  it('opt-in: an empty categoryPreferences is unknown, not denied', () => {
    const ev = event({ consent: { categoryPreferences: {} } });
    const d = decide({}, consentFromSegment(ev, cats), { ...dest, whenUnknown: 'hold' }, 'opt-in', TCF_NOT_CHECKED);
    expect(d.outcome).toBe('hold');
  });

  it('a categoryPreferences that is not an object revokes everything', () => {
    const ev = event({ consent: { categoryPreferences: 'all' } });
    const d = decide({}, consentFromSegment(ev, cats), dest, 'opt-out', TCF_NOT_CHECKED);
    expect(d.outcome).toBe('drop');
    expect(reasonTexts(d)).toEqual(['consent_denied:advertising']);
  });

  it('category aliases map CMP ids onto site categories; disagreement is denied', () => {
    const aliased = { advertising: { aliases: ['C0004'] } };
    const granted = consentFromSegment(event({ consent: { categoryPreferences: { C0004: true } } }), aliased);
    expect(granted.categories.advertising?.status).toBe('granted');
    const clash = consentFromSegment(event({ consent: { categoryPreferences: { C0004: true, advertising: false } } }), aliased);
    expect(clash.categories.advertising?.status).toBe('denied');
  });
});

describe('properties', () => {
  const prefValue = fc.oneof(fc.boolean(), fc.constant(null), fc.string(), fc.integer());
  const prefs = fc.dictionary(fc.constantFrom('advertising', 'analytics', 'functional', 'other'), prefValue);
  const integrations = fc.dictionary(
    fc.constantFrom('All', 'meta', 'ga4', 'x'),
    fc.oneof(fc.boolean(), fc.constant({}), fc.string()),
  );
  const destination = fc.record({
    id: fc.constantFrom('meta', 'ga4'),
    categories: fc.subarray(['advertising', 'analytics', 'functional']),
    combine: fc.constantFrom<'all' | 'any'>('all', 'any'),
    whenUnknown: fc.constantFrom<WhenUnknown>('drop', 'hold', 'redact'),
    integrationNames: fc.constant<string[]>([]),
    redactions: fc.subarray(['consent_unknown']),
  });
  const cats = { advertising: {}, analytics: {}, functional: {} };

  it('opt-in never forwards or redacts without a granted required category', () => {
    fc.assert(
      fc.property(prefs, integrations, destination, (p, i, dest) => {
        const ev = event({ consent: { categoryPreferences: p } }, i);
        const state = consentFromSegment(ev, cats);
        const d = decide(i, state, dest, 'opt-in', TCF_NOT_CHECKED);
        if (dest.categories.length === 0 || d.outcome === 'drop' || d.outcome === 'hold') return;
        const granted = dest.categories.filter((c) => state.categories[c]?.status === 'granted');
        if (d.outcome === 'forward') {
          expect(granted.length).toBe(dest.combine === 'all' ? dest.categories.length : granted.length);
          expect(granted.length).toBeGreaterThan(0);
        }
        // redact only happens for unknown categories, never for denied ones under `all`
        if (d.outcome === 'redact' && dest.combine === 'all') {
          expect(dest.categories.some((c) => state.categories[c]?.status === 'denied')).toBe(false);
        }
      }),
    );
  });

  it('the integrations object can only narrow: removing it never turns a forward into a drop', () => {
    fc.assert(
      fc.property(prefs, integrations, destination, fc.constantFrom<DataControlMode>('disabled', 'opt-out', 'opt-in'), (p, i, dest, mode) => {
        const ev = event({ consent: { categoryPreferences: p } }, i);
        const state = consentFromSegment(ev, cats);
        const withObj = decide(i, state, dest, mode, TCF_NOT_CHECKED);
        const without = decide({}, state, dest, mode, TCF_NOT_CHECKED);
        if (withObj.outcome === 'forward') expect(without.outcome).toBe('forward');
      }),
    );
  });
});
