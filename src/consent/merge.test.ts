import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeSignals, type CategorySignal } from './merge.ts';

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
});
