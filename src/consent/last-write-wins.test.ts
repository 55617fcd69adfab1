import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { supersedes, type ConsentClaim } from './last-write-wins.ts';

const claim = (over: Partial<ConsentClaim>): ConsentClaim => ({ status: 'granted', at: 10, source: 'segment', ...over });

describe('supersedes: last write wins, ties go to the most restrictive', () => {
  it.each<[string, Partial<ConsentClaim>, Partial<ConsentClaim>, boolean]>([
    ['a later grant replaces an earlier denial', { at: 11 }, { status: 'denied', at: 10 }, true],
    ['an earlier denial does not replace a later grant', { status: 'denied', at: 9 }, { at: 10 }, false],
    ['an undated claim is the oldest', { at: Number.NaN, status: 'denied' }, { at: 0 }, false],
    ['a dated claim replaces an undated one', { at: 0 }, { at: Number.NaN, status: 'denied' }, true],
    ['tie: a denial replaces a grant', { status: 'denied' }, {}, true],
    ['tie: a grant does not replace a denial', {}, { status: 'denied' }, false],
    ['tie, both grants: the earlier expiry replaces a later one', { validUntil: 50 }, { validUntil: 60 }, true],
    ['tie, both grants: an expiry replaces none (never expires)', { validUntil: 50 }, { validUntil: null }, true],
    ['tie, both grants: no expiry does not replace an expiry', {}, { validUntil: 50 }, false],
    ['tie, the denial wins even against an earlier-expiring grant', { status: 'denied' }, { validUntil: 1 }, true],
    ['tie on everything else: the smaller source', { source: 'gcm' }, { source: 'segment' }, true],
    ['tie on everything else: not the larger source', { source: 'upstream' }, { source: 'store' }, false],
    ['equal claims: nothing changes', {}, {}, false],
    ['undated ties break like dated ones', { at: Number.NaN, status: 'denied' }, { at: Number.NEGATIVE_INFINITY }, true],
  ])('%s', (_name, a, b, expected) => {
    expect(supersedes(claim(a), claim(b))).toBe(expected);
  });

  const arbitrary = fc.record({
    status: fc.constantFrom('granted' as const, 'denied' as const),
    at: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(Number.NaN)),
    validUntil: fc.constantFrom(null, undefined, 1, 2),
    source: fc.constantFrom('a', 'b'),
  });
  /** What the order compares: an undated time is the oldest, an absent expiry is none. */
  const key = (c: ConsentClaim): string => JSON.stringify([Number.isFinite(c.at) ? c.at : null, c.status, c.validUntil ?? null, c.source]);

  it('is a strict total order, so the arrival order never changes the winner', () => {
    fc.assert(
      fc.property(arbitrary, arbitrary, (a, b) => {
        expect(supersedes(a, b) && supersedes(b, a)).toBe(false);
        if (key(a) !== key(b)) expect(supersedes(a, b) || supersedes(b, a)).toBe(true);
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});
