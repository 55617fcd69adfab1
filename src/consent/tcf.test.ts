import { TCString, type TCModel } from '@iabtechlabtcf/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { coreBits, craftedRangeBomb, craftedRestrictionBomb, disclosedSegment, encodeWithLibrary, type ModelSpec } from '../../test/fixtures/tcf/build.ts';
import { SPEC_EXAMPLES } from '../../test/fixtures/tcf/spec-examples.ts';
import { checkTcf, createTcfReader, DEFAULT_TCF_OPTIONS, purposesConsented, THIRTEEN_MONTHS_MS, type TcfCheck, type TcfDenialCode, type TcfOptions, type TcfRequirement, type TcfSummary } from './tcf.ts';

const DAY = 24 * 60 * 60 * 1000;
/** TC strings store LastUpdated at midnight UTC of the day; "now" is later that day. */
const UPDATED = new Date(Date.UTC(2026, 0, 10));
const NOW = new Date(UPDATED.getTime() + 12 * 60 * 60 * 1000);
const UPDATED_DS = Math.round(UPDATED.getTime() / 100);

function reader(overrides: Partial<TcfOptions> = {}) {
  return createTcfReader({ ...DEFAULT_TCF_OPTIONS, ...overrides });
}

function valid(spec: ModelSpec = {}): string {
  return encodeWithLibrary({ lastUpdated: UPDATED, ...spec });
}

function summary(spec: ModelSpec): TcfSummary {
  const r = reader().read(valid(spec), NOW);
  if (!r.ok) throw new Error(`expected a valid string, got ${r.reason}`);
  return r.tcf;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('createTcfReader: valid strings', () => {
  it.each([4, 5])('accepts a library-encoded TCF string with policy version %i and exposes its signals', (policyVersion) => {
    const tc = valid({
      policyVersion,
      purposeConsents: [1, 2, 3, 7],
      purposeLIs: [2, 7],
      vendorConsents: [1, 5, 9, 55],
      vendorLIs: [5, 7],
      disclosed: [1, 5, 7, 9, 55],
      specialFeatures: [1],
      restrictions: [
        { vendorId: 5, purposeId: 2, type: 1 },
        { vendorId: 9, purposeId: 7, type: 2 },
        { vendorId: 9, purposeId: 3, type: 0 },
      ],
    });
    const r = reader().read(tc, NOW);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const t = r.tcf;
    expect(t).toMatchObject({ version: 2, policyVersion, cmpId: 10, isServiceSpecific: true, publisherCountryCode: 'DE', lastUpdatedMs: UPDATED.getTime() });
    expect(t.created.toISOString()).toBe('2026-01-10T00:00:00.000Z');
    expect(t.lastUpdated.toISOString()).toBe('2026-01-10T00:00:00.000Z');
    expect([...t.purposeConsents].sort((a, b) => a - b)).toEqual([1, 2, 3, 7]);
    expect([...t.purposeLegitimateInterests].sort((a, b) => a - b)).toEqual([2, 7]);
    expect([...t.specialFeatureOptins]).toEqual([1]);
    expect([1, 5, 9, 55, 2, 56].map((v) => t.vendorConsent(v))).toEqual([true, true, true, true, false, false]);
    expect([5, 7, 1].map((v) => t.vendorLegitimateInterest(v))).toEqual([true, true, false]);
    expect([7, 8].map((v) => t.vendorDisclosed(v))).toEqual([true, false]);
    expect(t.publisherRestriction(5, 2)).toBe(1);
    expect(t.publisherRestriction(9, 7)).toBe(2);
    expect(t.publisherRestriction(9, 3)).toBe(0);
    expect(t.publisherRestriction(5, 7)).toBeUndefined();
    expect(t.vendorConsent(0)).toBe(false);
    expect(t.vendorConsent(1.5)).toBe(false);
  });

  it('reads a bit-written string with range-encoded vendors and a disclosed segment', () => {
    const tc = coreBits({
      lastUpdatedDs: UPDATED_DS,
      purposeConsents: [1, 2],
      vendorConsents: { maxVendorId: 900, ranges: [[3, 400], [755], [800, 900]] },
      vendorLIs: { maxVendorId: 12, bitfield: [12] },
      restrictions: [{ purposeId: 2, type: 0, ranges: [[755]] }],
    }).toBase64Url();
    const r = reader().read(`${tc}.${disclosedSegment({ maxVendorId: 900, ranges: [[1, 900]] })}`, NOW);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect([2, 3, 400, 401, 755, 799, 800, 900, 901].map((v) => r.tcf.vendorConsent(v))).toEqual([false, true, true, false, true, false, true, true, false]);
    expect(r.tcf.vendorLegitimateInterest(12)).toBe(true);
    expect(r.tcf.vendorDisclosed(900)).toBe(true);
    expect(r.tcf.publisherRestriction(755, 2)).toBe(0);
  });

  it('merges several restrictions on one vendor and purpose: not-allowed wins, consent+LI together cannot be met', () => {
    const tc = coreBits({
      lastUpdatedDs: UPDATED_DS,
      restrictions: [
        { purposeId: 2, type: 1, ranges: [[1, 10]] },
        { purposeId: 2, type: 2, ranges: [[5, 20]] },
        { purposeId: 7, type: 0, ranges: [[3]] },
        { purposeId: 7, type: 1, ranges: [[3, 4]] },
      ],
    }).toBase64Url();
    const r = reader().read(tc, NOW);
    if (!r.ok) throw new Error(r.reason);
    expect([1, 5, 15, 21].map((v) => r.tcf.publisherRestriction(v, 2))).toEqual([1, 0, 2, undefined]);
    expect([3, 4].map((v) => r.tcf.publisherRestriction(v, 7))).toEqual([0, 1]);
  });

  it('hands out a summary that cannot be changed through its sets or dates', () => {
    const r1 = reader();
    const tc = valid({ purposeConsents: [1] });
    const first = r1.read(tc, NOW);
    if (!first.ok) throw new Error(first.reason);
    expect(() => (first.tcf.purposeConsents as Set<number>).add(2)).toThrow(TypeError);
    expect(() => (first.tcf.purposeConsents as Set<number>).delete(1)).toThrow(TypeError);
    expect(() => (first.tcf.purposeConsents as Set<number>).clear()).toThrow(TypeError);
    first.tcf.lastUpdated.setTime(0);
    expect(() => {
      (first.tcf as { policyVersion: number }).policyVersion = 9;
    }).toThrow(TypeError);
    const again = r1.read(tc, NOW);
    if (!again.ok) throw new Error(again.reason);
    expect([...again.tcf.purposeConsents]).toEqual([1]);
    expect(again.tcf.lastUpdated.getTime()).toBe(UPDATED.getTime());
  });
});

describe('createTcfReader: each refusal has its reason', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an object', { tc: 'x' }],
    ['the empty string', ''],
  ])('tcf_absent for %s', (_n, input) => {
    expect(reader().read(input, NOW)).toEqual({ ok: false, reason: 'tcf_absent' });
  });

  it('tcf_too_long above maxLength, before any decoding, and without filling the cache', () => {
    const r = reader({ maxLength: 100 });
    const spy = vi.spyOn(TCString, 'decode');
    expect(r.read('A'.repeat(101), NOW)).toEqual({ ok: false, reason: 'tcf_too_long' });
    expect(spy).not.toHaveBeenCalled();
    expect(r.cacheSize).toBe(0);
    expect(r.read(valid(), NOW).ok).toBe(true);
  });

  it('tcf_rejected_by_guard for impossible ranges and for range bombs, without calling the decoder', () => {
    const spy = vi.spyOn(TCString, 'decode');
    const inverted = coreBits({ lastUpdatedDs: UPDATED_DS, vendorConsents: { maxVendorId: 10, ranges: [[9, 2]] } }).toBase64Url();
    expect(reader().read(inverted, NOW)).toEqual({ ok: false, reason: 'tcf_rejected_by_guard' });
    expect(reader().read(craftedRangeBomb(300).tc, NOW)).toEqual({ ok: false, reason: 'tcf_rejected_by_guard' });
    expect(reader().read(craftedRestrictionBomb(300).tc, NOW)).toEqual({ ok: false, reason: 'tcf_rejected_by_guard' });
    expect(spy).not.toHaveBeenCalled();
  });

  it('tcf_undecodable for text that is not a TC string', () => {
    expect(reader().read('not a tc string', NOW)).toEqual({ ok: false, reason: 'tcf_undecodable' });
    expect(reader().read(valid().slice(0, 30), NOW)).toEqual({ ok: false, reason: 'tcf_undecodable' });
  });

  it('tcf_undecodable when the decoder throws something other than a DecodingError', () => {
    // CmpId 0 makes the model's setter throw a TCModelError, not a DecodingError.
    expect(reader().read(coreBits({ lastUpdatedDs: UPDATED_DS, cmpId: 0 }).toBase64Url(), NOW)).toEqual({ ok: false, reason: 'tcf_undecodable' });
    const tc = valid();
    for (const thrown of [new TypeError('boom'), new RangeError('deep'), 'a bare string', undefined]) {
      const spy = vi.spyOn(TCString, 'decode').mockImplementation(() => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- the point of the test: a decoder may throw anything
        throw thrown;
      });
      expect(reader().read(tc, NOW)).toEqual({ ok: false, reason: 'tcf_undecodable' });
      spy.mockRestore();
    }
  });

  it.each([1, 3, 63])('tcf_wrong_version for Version %i', (version) => {
    expect(reader().read(coreBits({ lastUpdatedDs: UPDATED_DS, version }).toBase64Url(), NOW)).toEqual({ ok: false, reason: 'tcf_wrong_version' });
  });

  it('tcf_wrong_version when the decoder reports a version other than 2', () => {
    const tc = valid();
    const real = TCString.decode.bind(TCString);
    vi.spyOn(TCString, 'decode').mockImplementation((s: string): TCModel => {
      const m = real(s);
      m.version = 3;
      return m;
    });
    expect(reader().read(tc, NOW)).toEqual({ ok: false, reason: 'tcf_wrong_version' });
  });

  it.each([0, 2, 3])('tcf_policy_too_old for policy version %i (TCF 2.2 is 4)', (policyVersion) => {
    expect(reader().read(coreBits({ lastUpdatedDs: UPDATED_DS, policyVersion }).toBase64Url(), NOW)).toEqual({ ok: false, reason: 'tcf_policy_too_old' });
    if (policyVersion > 0) expect(reader().read(valid({ policyVersion }), NOW)).toEqual({ ok: false, reason: 'tcf_policy_too_old' });
  });

  it.each(SPEC_EXAMPLES)('tcf_policy_too_old for the spec\'s pre-2.2 example: $name', ({ tc }) => {
    expect(reader().read(tc, NOW)).toEqual({ ok: false, reason: 'tcf_policy_too_old' });
  });

  it('tcf_not_service_specific for a global-scope string', () => {
    expect(reader().read(valid({ isServiceSpecific: false }), NOW)).toEqual({ ok: false, reason: 'tcf_not_service_specific' });
    expect(reader().read(coreBits({ lastUpdatedDs: UPDATED_DS, isServiceSpecific: false }).toBase64Url(), NOW)).toEqual({ ok: false, reason: 'tcf_not_service_specific' });
  });

  it('tcf_from_future beyond the clock skew, accepted within it', () => {
    const skew = DEFAULT_TCF_OPTIONS.clockSkewMs;
    const r = reader();
    expect(r.read(valid(), new Date(UPDATED.getTime() - skew))).toMatchObject({ ok: true });
    expect(r.read(valid(), new Date(UPDATED.getTime() - skew - 1))).toEqual({ ok: false, reason: 'tcf_from_future' });
    expect(r.read(valid({ lastUpdated: new Date(UPDATED.getTime() + DAY) }), NOW)).toEqual({ ok: false, reason: 'tcf_from_future' });
    // Created ahead of LastUpdated and of now is just as impossible.
    const created = coreBits({ createdDs: UPDATED_DS + DAY / 100, lastUpdatedDs: UPDATED_DS }).toBase64Url();
    expect(r.read(created, NOW)).toEqual({ ok: false, reason: 'tcf_from_future' });
  });

  it('tcf_expired past maxAgeMs (13 × 30 days by default), accepted up to it', () => {
    expect(DEFAULT_TCF_OPTIONS.maxAgeMs).toBe(THIRTEEN_MONTHS_MS);
    expect(THIRTEEN_MONTHS_MS).toBe(390 * DAY);
    const r = reader();
    const tc = valid();
    expect(r.read(tc, new Date(UPDATED.getTime() + THIRTEEN_MONTHS_MS))).toMatchObject({ ok: true });
    expect(r.read(tc, new Date(UPDATED.getTime() + THIRTEEN_MONTHS_MS + 1))).toEqual({ ok: false, reason: 'tcf_expired' });
    const short = reader({ maxAgeMs: 30 * DAY });
    expect(short.read(tc, new Date(UPDATED.getTime() + 31 * DAY))).toEqual({ ok: false, reason: 'tcf_expired' });
  });
});

describe('createTcfReader: cache', () => {
  it('caches per string, refusals included, and never more than cacheEntries', () => {
    const r = reader({ cacheEntries: 3 });
    const spy = vi.spyOn(TCString, 'decode');
    const a = valid({ purposeConsents: [1] });
    r.read(a, NOW);
    r.read(a, NOW);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(r.cacheSize).toBe(1);
    const notService = valid({ isServiceSpecific: false });
    expect(r.read(notService, NOW)).toEqual({ ok: false, reason: 'tcf_not_service_specific' });
    expect(r.read(notService, NOW)).toEqual({ ok: false, reason: 'tcf_not_service_specific' });
    expect(spy).toHaveBeenCalledTimes(2);
    r.read('garbage!', NOW);
    r.read('garbage!', NOW);
    expect(r.cacheSize).toBe(3);
    for (let i = 0; i < 10; i++) r.read(`garbage${i}`, NOW);
    expect(r.cacheSize).toBe(3);
  });

  it('re-runs the date checks on every read: a string cached while fresh expires on time', () => {
    const r = reader({ maxAgeMs: 10 * DAY });
    const tc = valid();
    expect(r.read(tc, NOW).ok).toBe(true);
    expect(r.read(tc, new Date(UPDATED.getTime() + 11 * DAY))).toEqual({ ok: false, reason: 'tcf_expired' });
    expect(r.read(tc, new Date(UPDATED.getTime() - DAY))).toEqual({ ok: false, reason: 'tcf_from_future' });
    expect(r.read(tc, NOW).ok).toBe(true);
    expect(r.cacheSize).toBe(1);
  });

  it('bounds the cache by estimated bytes as well as by entries', () => {
    const r = reader({ cacheEntries: 1000, cacheMaxBytes: 4096 });
    for (let i = 0; i < 200; i++) r.read(`${'Q'.repeat(100)}${i}`, NOW);
    expect(r.cacheSize).toBeLessThan(200);
    expect(r.cacheSize).toBeGreaterThan(0);
  });

  it('refuses nonsensical options and an invalid clock', () => {
    expect(() => reader({ maxLength: 0 })).toThrow(RangeError);
    expect(() => reader({ cacheEntries: 1.5 })).toThrow(RangeError);
    expect(() => reader({ maxAgeMs: -1 })).toThrow(RangeError);
    expect(() => reader({ maxExpandedIds: 0 })).toThrow(RangeError);
    expect(() => reader({ clockSkewMs: -5 })).toThrow(RangeError);
    expect(() => reader().read(valid(), new Date(Number.NaN))).toThrow(TypeError);
    expect(() => reader().read(valid(), 'today' as unknown as Date)).toThrow(TypeError);
  });
});

describe('the range-expansion attack', () => {
  // Without the scan, @iabtechlabtcf/core 1.5.21 needs ~86–120 ms for the 300-character vendor-range string (45 ranges of
  // 1..65535), ~250 ms for the restriction one, and up to ~2 s for their 2 KB versions (measurements in tcf-guard.ts). With it,
  // the whole read is a fraction of a millisecond.
  it.each([
    ['vendor-consent ranges', () => craftedRangeBomb(300)],
    ['publisher-restriction ranges', () => craftedRestrictionBomb(300)],
  ])('refuses a crafted string of %s in well under 10 ms', (_name, make) => {
    const { tc, entries } = make();
    expect(tc.length).toBeLessThanOrEqual(300);
    expect(entries).toBeGreaterThan(40);
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const r = reader(); // a fresh reader each time: the cache must not be what makes it fast
      const t0 = performance.now();
      const result = r.read(tc, NOW);
      times.push(performance.now() - t0);
      expect(result).toEqual({ ok: false, reason: 'tcf_rejected_by_guard' });
    }
    times.sort((a, b) => a - b);
    expect(times[Math.floor(times.length / 2)]).toBeLessThan(10);
  });

  it('lets a string right at the expansion bound through, in bounded time', () => {
    const bound = DEFAULT_TCF_OPTIONS.maxExpandedIds;
    const tc = coreBits({ lastUpdatedDs: UPDATED_DS, vendorConsents: { maxVendorId: bound, ranges: [[1, bound]] } }).toBase64Url();
    const over = coreBits({ lastUpdatedDs: UPDATED_DS, vendorConsents: { maxVendorId: bound + 1, ranges: [[1, bound + 1]] } }).toBase64Url();
    const t0 = performance.now();
    const r = reader().read(tc, NOW);
    expect(performance.now() - t0).toBeLessThan(50);
    expect(r.ok && r.tcf.vendorConsent(bound)).toBe(true);
    expect(reader().read(over, NOW)).toEqual({ ok: false, reason: 'tcf_rejected_by_guard' });
  });
});

describe('fuzz: read never throws and never accepts what the decoder or the checks would not', () => {
  const BASE = valid({ purposeConsents: [1, 2, 7], purposeLIs: [2], vendorConsents: [1, 2, 3, 40], vendorLIs: [2], disclosed: [1, 2, 3, 40], restrictions: [{ vendorId: 2, purposeId: 2, type: 1 }] });

  /** Independent oracle: what the reference decoder says, with the documented checks applied to its raw model. */
  function acceptable(s: string, now: Date): boolean {
    let m: TCModel;
    try {
      m = TCString.decode(s);
    } catch {
      return false;
    }
    const nowMs = now.getTime();
    return (
      Number(m.version) === 2 &&
      Number(m.policyVersion) >= 4 &&
      m.isServiceSpecific &&
      Math.max(m.created.getTime(), m.lastUpdated.getTime()) <= nowMs + DEFAULT_TCF_OPTIONS.clockSkewMs &&
      nowMs - m.lastUpdated.getTime() <= DEFAULT_TCF_OPTIONS.maxAgeMs
    );
  }

  function check(r: ReturnType<typeof reader>, s: string): void {
    const t0 = performance.now();
    const result = r.read(s, NOW);
    expect(performance.now() - t0).toBeLessThan(50);
    if (result.ok) expect(acceptable(s, NOW)).toBe(true);
  }

  it('arbitrary strings', () => {
    const r = reader();
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'), maxLength: 300 })), (s) => check(r, s)),
      { seed: 7001, numRuns: 400 },
    );
  });

  it('base64url of arbitrary bytes, alone and after a valid-looking version prefix', () => {
    const r = reader();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), fc.boolean(), (bytes, prefixed) => {
        const b = Buffer.from(bytes);
        if (prefixed && b.length > 0) b[0] = (b[0]! & 0b11) | 0b00001000; // first six bits = 2: reaches the deep parser
        check(r, b.toString('base64url'));
      }),
      { seed: 7002, numRuns: 400 },
    );
  });

  it('bit flips and truncations of a valid string', () => {
    const r = reader();
    const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    expect(r.read(BASE, NOW).ok).toBe(true);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 6 }), fc.option(fc.nat()), (flips, cut) => {
        const chars = [...BASE];
        for (const [at, bit] of flips) {
          const i = at % chars.length;
          const v = ALPHA.indexOf(chars[i]!);
          if (v >= 0) chars[i] = ALPHA[v ^ (1 << bit)]!;
        }
        let s = chars.join('');
        if (cut !== null) s = s.slice(0, cut % (s.length + 1));
        check(r, s);
      }),
      { seed: 7003, numRuns: 600 },
    );
  });
});

describe('checkTcf', () => {
  /** The table names denials as the policy's reasons spell them (`<code>:<id>`, docs/policy.md); `tcf_allowed` is a pass. */
  const expected = (allowed: boolean, reasons: readonly string[]): TcfCheck =>
    allowed
      ? { allowed: true }
      : { allowed: false, denials: reasons.map((r) => ({ code: r.slice(0, r.indexOf(':')) as TcfDenialCode, id: Number(r.slice(r.indexOf(':') + 1)) })) };
  const tcf = summary({
    policyVersion: 4,
    purposeConsents: [1, 2, 3, 4, 7],
    purposeLIs: [2, 8, 9],
    vendorConsents: [10, 12],
    vendorLIs: [11, 12],
    restrictions: [
      { vendorId: 12, purposeId: 7, type: 0 },
      { vendorId: 11, purposeId: 2, type: 1 },
      { vendorId: 10, purposeId: 2, type: 2 },
    ],
  });
  const tcf23 = summary({ policyVersion: 5, purposeConsents: [1, 2], vendorConsents: [10, 11], disclosed: [10] });

  const cases: [string, TcfRequirement, boolean, string[], TcfSummary?][] = [
    ['consent vendor + consented purposes', { vendorId: 10, basis: 'consent', purposes: [1, 3, 4] }, true, ['tcf_allowed']],
    ['purpose without consent', { vendorId: 10, basis: 'consent', purposes: [1, 8] }, false, ['tcf_purpose_not_consented:8']],
    ['vendor without consent', { vendorId: 11, basis: 'consent', purposes: [1] }, false, ['tcf_vendor_not_consented:11']],
    ['vendor and purpose both missing', { vendorId: 755, basis: 'consent', purposes: [3, 5] }, false, ['tcf_vendor_not_consented:755', 'tcf_purpose_not_consented:5']],
    ['LI vendor + LI purposes', { vendorId: 11, basis: 'legitimateInterest', purposes: [8, 9] }, true, ['tcf_allowed']],
    ['LI purpose without LI', { vendorId: 11, basis: 'legitimateInterest', purposes: [10] }, false, ['tcf_purpose_no_legitimate_interest:10']],
    ['LI vendor missing', { vendorId: 10, basis: 'legitimateInterest', purposes: [8] }, false, ['tcf_vendor_no_legitimate_interest:10']],
    ['purpose 1 never on LI', { vendorId: 11, basis: 'legitimateInterest', purposes: [1] }, false, ['tcf_purpose_li_not_permitted:1']],
    ['purposes 3–6 not on LI from policy 4', { vendorId: 11, basis: 'legitimateInterest', purposes: [3] }, false, ['tcf_purpose_li_not_permitted:3']],
    ['either: consent for one purpose, LI for another', { vendorId: 12, basis: 'either', purposes: [1, 8] }, true, ['tcf_allowed']],
    ['either: LI vendor, purpose 1 needs consent', { vendorId: 11, basis: 'either', purposes: [1] }, false, ['tcf_vendor_not_consented:11']],
    ['either: neither basis for the purpose', { vendorId: 12, basis: 'either', purposes: [10] }, false, ['tcf_purpose_not_consented:10', 'tcf_purpose_no_legitimate_interest:10']],
    ['either: basis must match between vendor and purpose', { vendorId: 10, basis: 'either', purposes: [8] }, false, ['tcf_purpose_not_consented:8', 'tcf_vendor_no_legitimate_interest:10']],
    ['publisher: purpose not allowed', { vendorId: 12, basis: 'either', purposes: [1, 7] }, false, ['tcf_purpose_restricted_by_publisher:7']],
    ['publisher: require consent, vendor has only LI', { vendorId: 11, basis: 'either', purposes: [2] }, false, ['tcf_vendor_not_consented:11']],
    ['publisher: require consent, requirement is LI-only', { vendorId: 11, basis: 'legitimateInterest', purposes: [2] }, false, ['tcf_purpose_basis_restricted:2']],
    ['publisher: require LI, vendor only consented', { vendorId: 10, basis: 'either', purposes: [2] }, false, ['tcf_vendor_no_legitimate_interest:10']],
    ['publisher: restriction is per vendor', { vendorId: 10, basis: 'consent', purposes: [7] }, true, ['tcf_allowed']],
    ['no vendor: purposes only', { basis: 'consent', purposes: [1, 2] }, true, ['tcf_allowed']],
    ['no vendor: purpose LI only', { basis: 'legitimateInterest', purposes: [2] }, true, ['tcf_allowed']],
    ['no vendor: LI purpose missing', { basis: 'legitimateInterest', purposes: [7] }, false, ['tcf_purpose_no_legitimate_interest:7']],
    ['vendor only, consent', { vendorId: 10, basis: 'consent', purposes: [] }, true, ['tcf_allowed']],
    ['vendor only, LI missing', { vendorId: 10, basis: 'legitimateInterest', purposes: [] }, false, ['tcf_vendor_no_legitimate_interest:10']],
    ['vendor only, either, neither', { vendorId: 99, basis: 'either', purposes: [] }, false, ['tcf_vendor_not_consented:99', 'tcf_vendor_no_legitimate_interest:99']],
    ['invalid purpose id', { vendorId: 10, basis: 'consent', purposes: [0, 25, 1.5] }, false, ['tcf_purpose_invalid:0', 'tcf_purpose_invalid:25', 'tcf_purpose_invalid:1.5']],
    ['invalid vendor id', { vendorId: -3, basis: 'consent', purposes: [1] }, false, ['tcf_vendor_invalid:-3']],
    ['TCF 2.3: disclosed vendor', { vendorId: 10, basis: 'consent', purposes: [1, 2] }, true, ['tcf_allowed'], tcf23],
    ['TCF 2.3: consented but never disclosed', { vendorId: 11, basis: 'consent', purposes: [1] }, false, ['tcf_vendor_not_disclosed:11'], tcf23],
  ];

  it.each(cases)('%s', (_name, req, allowed, reasons, t = tcf) => {
    expect(checkTcf(t, req)).toEqual(expected(allowed, reasons));
  });

  it('TCF 2.3: a string without the mandatory DisclosedVendors segment discloses nobody', () => {
    const r = reader().read(coreBits({ lastUpdatedDs: UPDATED_DS, policyVersion: 5, purposeConsents: [1], vendorConsents: { maxVendorId: 10, ranges: [[10]] } }).toBase64Url(), NOW);
    if (!r.ok) throw new Error(r.reason);
    expect(checkTcf(r.tcf, { vendorId: 10, basis: 'consent', purposes: [1] })).toEqual(expected(false, ['tcf_vendor_not_disclosed:10']));
    expect(checkTcf(r.tcf, { basis: 'consent', purposes: [1] })).toEqual({ allowed: true });
  });

  it('ignores LI bits a non-conforming CMP set for purposes 1 and 3 (never on LI from policy 4)', () => {
    const r = reader().read(coreBits({ lastUpdatedDs: UPDATED_DS, policyVersion: 4, purposeLIs: [3] }).toBase64Url(), NOW);
    if (!r.ok) throw new Error(r.reason);
    expect(checkTcf(r.tcf, { basis: 'legitimateInterest', purposes: [3] })).toEqual(expected(false, ['tcf_purpose_li_not_permitted:3']));
    expect(checkTcf(r.tcf, { basis: 'legitimateInterest', purposes: [1] })).toEqual(expected(false, ['tcf_purpose_li_not_permitted:1']));
  });
});

describe('purposesConsented', () => {
  const tcf = summary({ purposeConsents: [1, 3, 4], purposeLIs: [2] });
  it.each([
    [[1], true],
    [[1, 3, 4], true],
    [[1, 2], false],
    [[2], false],
    [[], false],
    [[0], false],
    [[25], false],
  ])('%j → %s', (purposes, expected) => {
    expect(purposesConsented(tcf, purposes)).toBe(expected);
  });
});
