import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeWithLibrary } from '../../test/fixtures/tcf/build.ts';
import type { Event } from '../ingest/event.ts';
import { createConsentResolver, type ResolverCategory } from './resolve.ts';
import { NO_SIGNALS, type RequestSignals } from './signals.ts';

const categories: Record<string, ResolverCategory> = {
  advertising: { saleOrShare: true, gcm: ['ad_storage', 'ad_user_data'], tcf: { purposes: [1, 3, 4] } },
  analytics: { gcm: ['analytics_storage'], tcf: { purposes: [1, 8] } },
  functional: {},
};
const resolver = createConsentResolver({ categories, tcf: { maxLength: 2048, maxAgeDays: 395, cacheEntries: 100 } });
const now = new Date('2026-03-01T12:00:00.000Z');

function event(prefs?: unknown, timestamp = '2026-03-01T12:00:00.000Z'): Event {
  return {
    messageId: 'm',
    type: 'track',
    timestamp,
    receivedAt: '2026-03-01T12:00:00.000Z',
    context: prefs === undefined ? {} : { consent: { categoryPreferences: prefs } },
    properties: {},
    traits: {},
    integrations: {},
    anonymousId: 'a',
  };
}

function statuses(e: Event, signals: RequestSignals = NO_SIGNALS): Record<string, string> {
  const s = resolver.fromRequest(e, signals, now);
  return Object.fromEntries(Object.entries(s.categories).map(([k, v]) => [k, `${v.status}${v.source === 'none' ? '' : `:${v.source}`}`]));
}

describe('consent from the request', () => {
  it.each([
    ['nothing: unknown', event(), NO_SIGNALS, { advertising: 'unknown', analytics: 'unknown', functional: 'unknown' }],
    ['the Segment object', event({ advertising: true, analytics: false }), NO_SIGNALS, { advertising: 'granted:segment', analytics: 'denied:segment', functional: 'unknown' }],
    ['an invalid Segment value revokes', event({ analytics: 'yes' }), NO_SIGNALS, { advertising: 'unknown', analytics: 'denied:segment:invalid', functional: 'unknown' }],
    ['Consent Mode G111 grants what all its flags grant', event(), { gpc: false, gcs: 'G111' }, { advertising: 'unknown', analytics: 'granted:gcm', functional: 'unknown' }],
    ['gcd with every signal granted', event(), { gpc: false, gcd: '13v3v3v3v5' }, { advertising: 'granted:gcm', analytics: 'granted:gcm', functional: 'unknown' }],
    ['Consent Mode G100 denies', event(), { gpc: false, gcs: 'G100' }, { advertising: 'denied:gcm', analytics: 'denied:gcm', functional: 'unknown' }],
    ['malformed Consent Mode says nothing', event(), { gpc: false, gcs: 'G1x1', gcd: 'garbage' }, { advertising: 'unknown', analytics: 'unknown', functional: 'unknown' }],
    ['a tie between Segment and Consent Mode is denied', event({ analytics: true }), { gpc: false, gcs: 'G100' }, { advertising: 'denied:gcm', analytics: 'denied:gcm', functional: 'unknown' }],
    ['an older Segment grant loses to the hit\'s Consent Mode', event({ analytics: true }, '2026-03-01T11:00:00.000Z'), { gpc: false, gcs: 'G100' }, { advertising: 'denied:gcm', analytics: 'denied:gcm', functional: 'unknown' }],
    ['GPC denies the sale/share category over every grant', event({ advertising: true, analytics: true }), { gpc: true, gcd: '13v3v3v3v5' }, { advertising: 'denied:gpc', analytics: 'granted:gcm', functional: 'unknown' }],
    // Two grants at the same time: the source that sorts first is named, whichever came first (last-write-wins.ts).
    ['an undecodable TCF string revokes what TCF covers', event({ analytics: true }, '2026-03-01T11:00:00.000Z'), { gpc: false, tcf: { value: 'not-a-tc-string', source: 'query:gdpr_consent' } }, { advertising: 'denied:tcf:invalid', analytics: 'denied:tcf:invalid', functional: 'unknown' }],
  ] as const)('%s', (_name, e, signals, expected) => {
    expect(statuses(e, signals)).toEqual(expected);
  });

  it('says whether TCF applies and why', () => {
    expect(resolver.fromRequest(event(), NO_SIGNALS, now).tcf).toEqual({ applies: false });
    expect(resolver.fromRequest(event(), { gpc: false, gdprApplies: true }, now).tcf).toEqual({ applies: true });
    const bad = resolver.fromRequest(event(), { gpc: false, tcf: { value: '###', source: 'cookie:euconsent-v2' } }, now).tcf;
    expect(bad).toMatchObject({ applies: true, source: 'cookie:euconsent-v2', result: { ok: false } });
    expect(resolver.fromRequest(event(), { gpc: false, gdprApplies: false, tcf: { value: '###', source: 'q' } }, now).tcf?.applies).toBe(false);
  });

  it('a valid TCF string grants the categories whose purposes all have consent, dated by its lastUpdated', () => {
    const value = encodeWithLibrary({ lastUpdated: new Date(Date.UTC(2026, 1, 20)), purposeConsents: [1, 8] });
    const s = resolver.fromRequest(event(), { gpc: false, tcf: { value, source: 'query:gdpr_consent' } }, now);
    expect(s.categories.analytics).toEqual({ status: 'granted', source: 'tcf', at: Date.UTC(2026, 1, 20) });
    expect(s.categories.advertising).toEqual({ status: 'denied', source: 'tcf', at: Date.UTC(2026, 1, 20) });
    // The Segment object in the same hit is more recent than the string: it wins.
    const both = resolver.fromRequest(event({ advertising: true }), { gpc: false, tcf: { value, source: 'query:gdpr_consent' } }, now);
    expect(both.categories.advertising).toMatchObject({ status: 'granted', source: 'segment' });
  });

  it('an expired TCF string revokes, and says why', () => {
    const value = encodeWithLibrary({ lastUpdated: new Date(Date.UTC(2024, 0, 1)), purposeConsents: [1, 8] });
    const s = resolver.fromRequest(event(), { gpc: false, tcf: { value, source: 'cookie:euconsent-v2' } }, now);
    expect(s.categories.analytics).toMatchObject({ status: 'denied', source: 'tcf:invalid' });
    expect(s.tcf).toMatchObject({ applies: true, result: { ok: false, reason: 'tcf_expired' } });
  });
});

describe('a client clock never outranks a denial (issue 13)', () => {
  const R = Date.parse('2026-03-01T12:00:00.000Z');
  const issueSignals: RequestSignals = { gpc: false, gcs: 'G100', gcd: '13p3p3p2p5', gdprApplies: true, tcf: { value: 'garbage', source: 'query:gdpr_consent' } };
  const grantAll = { advertising: true, analytics: true, functional: true };

  it('the issue\'s hit: a Segment grant dated 2099 loses to the same hit\'s Consent Mode and TCF denials, and is listed as bounded', () => {
    const s = resolver.fromRequest(event(grantAll, '2099-01-01T00:00:00Z'), issueSignals, now);
    expect(s.categories.advertising).toMatchObject({ status: 'denied', at: R });
    expect(s.categories.analytics).toMatchObject({ status: 'denied', at: R });
    // Nothing else speaks about functional: the grant stands, as of the hit's arrival.
    expect(s.categories.functional).toEqual({ status: 'granted', source: 'segment', at: R, late: true });
    expect(s.bounded).toEqual([{ source: 'segment', categories: ['advertising', 'analytics', 'functional'], at: Date.parse('2099-01-01T00:00:00Z'), boundedTo: R }]);
    // The same hit without the timestamp: the same answer (it always was denied).
    const plain = resolver.fromRequest(event(grantAll), issueSignals, now);
    expect([plain.categories.advertising?.status, plain.categories.analytics?.status]).toEqual(['denied', 'denied']);
    expect(plain.bounded).toBeUndefined();
  });

  it('a stored grant dated 2099 never overrides a denial the hit carries, even one dated before the hit', () => {
    const store = { source: 'store', at: Date.parse('2099-01-01T00:00:00Z'), categories: { analytics: 'granted' as const, advertising: 'granted' as const } };
    const s = resolver.fromRequest(event({ analytics: false }, '2026-03-01T11:00:00.000Z'), NO_SIGNALS, now, [store]);
    expect(s.categories.analytics).toMatchObject({ status: 'denied', source: 'segment' });
    // What the hit does not speak about, the store decides (as of the hit's arrival).
    expect(s.categories.advertising).toEqual({ status: 'granted', source: 'store', at: R, late: true });
  });

  it('within the skew, a signal is bounded but not listed', () => {
    const skewed = createConsentResolver({ categories, tcf: { maxLength: 2048, maxAgeDays: 395, cacheEntries: 100 }, clockSkewMs: 60_000 });
    expect(skewed.fromRequest(event(grantAll, '2026-03-01T12:01:00.000Z'), NO_SIGNALS, now).bounded).toBeUndefined();
    expect(skewed.fromRequest(event(grantAll, '2026-03-01T12:01:00.001Z'), NO_SIGNALS, now).bounded).toHaveLength(1);
  });

  // Any timestamp a client can send (the whole Date range), any time a stored row may carry after the hit.
  const anyTime = fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }).map((t) => new Date(t).toISOString());
  const afterHit = fc.oneof(fc.integer({ min: R + 1, max: R + 600_000 }), fc.integer({ min: R + 1, max: 8_640_000_000_000_000 }));
  const hitDenial = fc.constantFrom<{ signals: RequestSignals; prefs: Record<string, boolean> }>(
    { signals: { gpc: false, gcs: 'G100' }, prefs: { analytics: true } },
    { signals: { gpc: false, gcd: '13p3p3p2p5' }, prefs: { analytics: true } },
    { signals: { gpc: false, gdprApplies: true, tcf: { value: 'garbage', source: 'query:gdpr_consent' } }, prefs: { analytics: true } },
    // The denial is the Segment object itself, dated by the event's timestamp (past or future).
    { signals: NO_SIGNALS, prefs: { analytics: false } },
  );

  it('for any hit timestamp, a denial carried by the hit is never overridden by a grant from the same hit or the store dated after its arrival', () => {
    fc.assert(
      fc.property(anyTime, hitDenial, fc.option(afterHit, { nil: undefined }), (timestamp, denial, storedAt) => {
        const extra = storedAt === undefined ? [] : [{ source: 'store', at: storedAt, categories: { analytics: 'granted' as const } }];
        const s = resolver.fromRequest(event(denial.prefs, timestamp), denial.signals, now, extra);
        expect(s.categories.analytics?.status).toBe('denied');
        expect(s.categories.analytics?.at ?? R).toBeLessThanOrEqual(R);
      }),
      { seed: 20261202, numRuns: 1000 },
    );
  });
});
