import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeSignals, signalsBeyond, type CategorySignal } from './merge.ts';

const cats = ['advertising', 'analytics'];
const saleOrShare = new Set(['advertising']);
const sig = (source: string, at: number, categories: CategorySignal['categories']): CategorySignal => ({ source, at, categories });

describe('mergeSignals: the precedence of docs/consent.md', () => {
  it.each([
    ['no signal: unknown', false, [], { advertising: 'unknown', analytics: 'unknown' }],
    ['one signal', false, [sig('segment', 10, { advertising: 'granted' })], { advertising: 'granted', analytics: 'unknown' }],
    ['the most recent wins (grant after deny)', false, [sig('tcf', 5, { advertising: 'denied' }), sig('segment', 10, { advertising: 'granted' })], { advertising: 'granted', analytics: 'unknown' }],
    ['the most recent wins (deny after grant)', false, [sig('segment', 5, { analytics: 'granted' }), sig('store', 10, { analytics: 'denied' })], { advertising: 'unknown', analytics: 'denied' }],
    ['a tie is denied', false, [sig('segment', 10, { analytics: 'granted' }), sig('gcm', 10, { analytics: 'denied' })], { advertising: 'unknown', analytics: 'denied' }],
    ['a tie is denied, in either order', false, [sig('gcm', 10, { analytics: 'denied' }), sig('segment', 10, { analytics: 'granted' })], { advertising: 'unknown', analytics: 'denied' }],
    ['an undated signal is the oldest', false, [sig('x', Number.NaN, { analytics: 'denied' }), sig('segment', 1, { analytics: 'granted' })], { advertising: 'unknown', analytics: 'granted' }],
    ['GPC denies sale/share categories over a newer grant', true, [sig('segment', 99, { advertising: 'granted', analytics: 'granted' })], { advertising: 'denied', analytics: 'granted' }],
    ['GPC denies sale/share categories with no signal at all', true, [], { advertising: 'denied', analytics: 'unknown' }],
  ] as const)('%s', (_name, gpc, signals, expected) => {
    const merged = mergeSignals({ siteCategories: cats, saleOrShare, gpc, signals });
    expect(Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, v.status]))).toEqual(expected);
  });

  it('names the deciding signal and its time', () => {
    const merged = mergeSignals({ siteCategories: cats, saleOrShare, gpc: true, signals: [sig('tcf', 5, { analytics: 'granted' })] });
    expect(merged).toEqual({ advertising: { status: 'denied', source: 'gpc' }, analytics: { status: 'granted', source: 'tcf', at: 5 } });
  });

  const status = fc.constantFrom('granted' as const, 'denied' as const);
  const signal = fc.record({
    source: fc.constantFrom('segment', 'gcm', 'tcf', 'store', 'upstream'),
    at: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(Number.NaN)),
    categories: fc.record({ advertising: status, analytics: status }, { requiredKeys: [] }),
  });

  it('grants only what the most recent signal for it granted, and never a sale/share category under GPC', () => {
    fc.assert(
      fc.property(fc.array(signal, { maxLength: 6 }), fc.boolean(), (signals, gpc) => {
        const merged = mergeSignals({ siteCategories: cats, saleOrShare, gpc, signals });
        for (const c of cats) {
          const got = merged[c]!.status;
          if (gpc && saleOrShare.has(c)) {
            expect(got).toBe('denied');
            continue;
          }
          const covering = signals.filter((s) => s.categories[c as 'advertising'] !== undefined);
          if (covering.length === 0) {
            expect(got).toBe('unknown');
            continue;
          }
          const time = (s: (typeof covering)[number]): number => (Number.isNaN(s.at) ? -Infinity : s.at);
          const latest = Math.max(...covering.map(time));
          const atLatest = covering.filter((s) => time(s) === latest).map((s) => s.categories[c as 'advertising']);
          expect(got).toBe(atLatest.includes('denied') ? 'denied' : 'granted');
        }
      }),
      { seed: 20261123, numRuns: 2000 },
    );
  });

  describe('every time bounded by the hit\'s arrival (issue 13: a client clock never outranks a denial)', () => {
    const R = 1_000;
    const merge = (signals: CategorySignal[]) => mergeSignals({ siteCategories: cats, saleOrShare, gpc: false, signals, notAfter: R });

    it.each([
      ['a grant dated after the arrival ties with a denial dated by it: denied', [sig('segment', 99_999, { analytics: 'granted' }), sig('gcm', R, { analytics: 'denied' })], 'denied', 'gcm'],
      ['a late grant never overrides an older denial either', [sig('segment', 99_999, { analytics: 'granted' }), sig('tcf', 10, { analytics: 'denied' })], 'denied', 'tcf'],
      ['a late stored grant never overrides the hit\'s denial', [sig('store', 4_102_444_800_000, { analytics: 'granted' }), sig('segment', 900, { analytics: 'denied' })], 'denied', 'segment'],
      ['a late grant alone still grants', [sig('segment', 99_999, { analytics: 'granted' })], 'granted', 'segment'],
      ['a late grant beats an older grant (both grants)', [sig('store', 99_999, { analytics: 'granted' }), sig('tcf', 10, { analytics: 'granted' })], 'granted', 'store'],
      ['a late denial counts as of the arrival: it beats an older grant', [sig('store', 99_999, { analytics: 'denied' }), sig('segment', 900, { analytics: 'granted' })], 'denied', 'store'],
      ['a grant in time beats an older denial as before', [sig('segment', 950, { analytics: 'granted' }), sig('tcf', 10, { analytics: 'denied' })], 'granted', 'segment'],
      ['a per-category time is bounded too', [{ source: 'store', at: 10, atByCategory: { analytics: 99_999 }, categories: { analytics: 'granted' } }, sig('gcm', 500, { analytics: 'denied' })], 'denied', 'gcm'],
    ] as const)('%s', (_name, signals, status, source) => {
      expect(merge([...signals])).toMatchObject({ analytics: { status, source } });
    });

    it('the time shown is the bounded one', () => {
      expect(merge([sig('segment', 99_999, { analytics: 'granted' })]).analytics).toEqual({ status: 'granted', source: 'segment', at: R, late: true });
      expect(merge([sig('store', 99_999, { analytics: 'denied' })]).analytics).toEqual({ status: 'denied', source: 'store', at: R });
    });

    it('lists the signals beyond the skew, not those within it', () => {
      const signals = [sig('segment', R + 61, { analytics: 'granted', advertising: 'denied' }), sig('gcm', R + 60, { analytics: 'denied' }), { source: 'store', at: 0, atByCategory: { advertising: R + 500 }, categories: { advertising: 'granted' as const } }];
      expect(signalsBeyond(signals, R, 60)).toEqual([
        { source: 'segment', categories: ['advertising', 'analytics'], at: R + 61, boundedTo: R },
        { source: 'store', categories: ['advertising'], at: R + 500, boundedTo: R },
      ]);
      expect(signalsBeyond(signals, Number.NaN, 60)).toEqual([]);
    });

    // Times from the whole range a client or an old stored row may carry, the far future included.
    const wideTime = fc.oneof(fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }), fc.integer({ min: R - 50, max: R + 50 }), fc.constant(Number.NaN));
    const wideSignal = fc.record({
      source: fc.constantFrom('segment', 'gcm', 'tcf', 'tcf:invalid', 'store', 'upstream'),
      at: wideTime,
      categories: fc.record({ advertising: status, analytics: status }, { requiredKeys: [] }),
    });

    it('for any times: no decided time is after the arrival, and a denial is overridden only by a grant dated no later than the arrival', () => {
      fc.assert(
        fc.property(fc.array(wideSignal, { maxLength: 6 }), (signals) => {
          const merged = mergeSignals({ siteCategories: cats, saleOrShare, gpc: false, signals, notAfter: R });
          for (const c of cats) {
            const got = merged[c]!;
            if (got.at !== undefined) expect(got.at).toBeLessThanOrEqual(R);
            const covering = signals.filter((s) => s.categories[c as 'advertising'] !== undefined);
            const denials = covering.filter((s) => s.categories[c as 'advertising'] === 'denied');
            if (got.status !== 'granted' || denials.length === 0) continue;
            const bounded = (t: number): number => (Number.isNaN(t) ? -Infinity : Math.min(t, R));
            const newestDenial = Math.max(...denials.map((d) => bounded(d.at)));
            // Some grant dated in time is later than every denial (the one named may be a later
            // grant: between grants, which one is named does not change the status).
            const overriding = covering.filter((s) => s.categories[c as 'advertising'] === 'granted' && s.at <= R && bounded(s.at) > newestDenial);
            expect(overriding.length).toBeGreaterThan(0);
          }
        }),
        { seed: 20261202, numRuns: 3000 },
      );
    });

    it('without a signal after the arrival, the bound changes nothing', () => {
      fc.assert(
        fc.property(fc.array(signal, { maxLength: 6 }), (signals) => {
          const bounded = mergeSignals({ siteCategories: cats, saleOrShare, gpc: false, signals, notAfter: 20 });
          expect(bounded).toEqual(mergeSignals({ siteCategories: cats, saleOrShare, gpc: false, signals }));
        }),
        { seed: 20261202, numRuns: 1000 },
      );
    });
  });
});
