import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BitWriter, coreBits, craftedRangeBomb, craftedRestrictionBomb, disclosedSegment, encodeWithLibrary, writeVendorSection } from '../../test/fixtures/tcf/build.ts';
import { SPEC_EXAMPLES } from '../../test/fixtures/tcf/spec-examples.ts';
import { scanTcString } from './tcf-guard.ts';

const BOUND = 10_000;

function why(tc: string, bound = BOUND) {
  const r = scanTcString(tc, bound);
  return r.ok ? 'ok' : r.why;
}

describe('scanTcString', () => {
  it('accepts well-formed strings and counts the ids a decoder would expand', () => {
    const tc = coreBits({
      vendorConsents: { maxVendorId: 20, ranges: [[1, 10], [15], [20]] },
      vendorLIs: { maxVendorId: 8, bitfield: [2, 8] },
      restrictions: [{ purposeId: 2, type: 1, ranges: [[3, 7]] }],
    }).toBase64Url();
    expect(scanTcString(`${tc}.${disclosedSegment({ maxVendorId: 30, ranges: [[1, 30]] })}`, BOUND)).toEqual({ ok: true, expandedIds: 12 + 8 + 5 + 30 });
  });

  it('refuses the range bombs of the issue as too_many_ids, at the first entry over the bound', () => {
    expect(why(craftedRangeBomb(300).tc)).toBe('too_many_ids');
    expect(why(craftedRestrictionBomb(300).tc)).toBe('too_many_ids');
    expect(why(craftedRangeBomb(2048).tc)).toBe('too_many_ids');
    // The same ranges in a disclosed-vendors segment are counted too.
    const bomb = disclosedSegment({ maxVendorId: 65535, ranges: [[1, 65535]] });
    expect(why(`${coreBits().toBase64Url()}.${bomb}`)).toBe('too_many_ids');
  });

  it('counts bit fields and overlapping ranges against the bound', () => {
    expect(why(coreBits({ vendorConsents: { maxVendorId: 40, bitfield: [] } }).toBase64Url(), 39)).toBe('too_many_ids');
    expect(why(coreBits({ vendorConsents: { maxVendorId: 40, bitfield: [] } }).toBase64Url(), 40)).toBe('ok');
    const overlapping = coreBits({ vendorConsents: { maxVendorId: 100, ranges: [[1, 100], [1, 100], [50, 100]] } }).toBase64Url();
    expect(scanTcString(overlapping, 1000)).toEqual({ ok: true, expandedIds: 251 });
    expect(why(overlapping, 250)).toBe('too_many_ids');
  });

  it.each([
    ['an inverted range', coreBits({ vendorConsents: { maxVendorId: 10, ranges: [[8, 3]] } }), 'bad_range'],
    ['vendor id 0', coreBits({ vendorConsents: { maxVendorId: 10, ranges: [[0]] } }), 'bad_range'],
    ['an id beyond MaxVendorId', coreBits({ vendorLIs: { maxVendorId: 10, ranges: [[5, 11]] } }), 'bad_range'],
    ['an inverted restriction range', coreBits({ restrictions: [{ purposeId: 2, type: 1, ranges: [[9, 2]] }] }), 'bad_range'],
    ['RestrictionType 3', coreBits({ restrictions: [{ purposeId: 2, type: 3, ranges: [[1]] }] }), 'bad_restriction'],
    ['PurposeId 0', coreBits({ restrictions: [{ purposeId: 0, type: 0, ranges: [[1]] }] }), 'bad_restriction'],
    ['version 1', coreBits({ version: 1 }), 'wrong_version'],
    ['version 3', coreBits({ version: 3 }), 'wrong_version'],
  ])('refuses %s', (_name, bits, expected) => {
    expect(why(bits.toBase64Url())).toBe(expected);
  });

  it('refuses malformed and truncated input', () => {
    const good = coreBits({ vendorConsents: { maxVendorId: 3, ranges: [[1, 3]] } }).toBase64Url();
    expect(why(good)).toBe('ok');
    expect(why(good.slice(0, 20))).toBe('truncated');
    expect(why(`${good}=`)).toBe('malformed');
    expect(why(`${good} `)).toBe('malformed');
    expect(why(good.replace('A', '+'))).toBe('malformed');
    expect(why(`${good}.`)).toBe('malformed');
    expect(why(`.${good}`)).toBe('malformed');
    expect(why(`${good}.YAAAAAAAAAAA.IAAAAAAA.QAAAAAAA.YAAAAAAAAAAA`)).toBe('malformed');
    expect(why('')).toBe('malformed');
    expect(why('é')).toBe('malformed');
    // A bit field that claims more vendors than the string has bits for.
    expect(why(coreBits({ vendorConsents: { maxVendorId: 5000, bitfield: [] } }).toBase64Url().slice(0, 100))).toBe('truncated');
  });

  it('refuses unknown, repeated or misplaced segments', () => {
    const core = coreBits().toBase64Url();
    const disclosed = disclosedSegment({ maxVendorId: 2, bitfield: [1] });
    expect(why(`${core}.${disclosed}`)).toBe('ok');
    expect(why(`${core}.${disclosed}.${disclosed}`)).toBe('bad_segment');
    expect(why(`${core}.${core}`)).toBe('bad_segment');
    const type5 = new BitWriter().int(5, 3);
    writeVendorSection(type5, { maxVendorId: 0 });
    expect(why(`${core}.${type5.toBase64Url()}`)).toBe('bad_segment');
    // A string that starts with an optional segment has no core: its first six bits are not version 2.
    expect(why(`${disclosed}.${core}`)).toBe('wrong_version');
  });

  it('checks the publisher TC segment length, custom purposes included', () => {
    const core = coreBits().toBase64Url();
    const pub = new BitWriter().int(3, 3).int(0, 24).int(0, 24).int(5, 6).int(0, 5).int(0, 5);
    expect(why(`${core}.${pub.toBase64Url()}`)).toBe('ok');
    const short = new BitWriter().int(3, 3).int(0, 24).int(0, 24).int(63, 6);
    expect(why(`${core}.${short.toBase64Url()}`)).toBe('truncated');
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('base64url'))), (s) => {
        const r = scanTcString(s, BOUND);
        expect(typeof r.ok).toBe('boolean');
      }),
      { seed: 20260110, numRuns: 500 },
    );
  });

  it('accepts every string the reference encoder produces (random models)', () => {
    const ids = (max: number) => fc.uniqueArray(fc.integer({ min: 1, max }), { maxLength: 40 });
    fc.assert(
      fc.property(
        fc.record({
          policyVersion: fc.constantFrom(4, 5),
          gvlVendors: fc.integer({ min: 1, max: 400 }),
          purposeConsents: fc.uniqueArray(fc.integer({ min: 1, max: 11 })),
          purposeLIs: fc.uniqueArray(fc.integer({ min: 1, max: 11 })),
          vendorConsents: ids(400),
          vendorLIs: ids(400),
          disclosed: ids(400),
          blocks: fc.array(fc.tuple(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 60 })), { maxLength: 4 }),
          specialFeatures: fc.uniqueArray(fc.integer({ min: 1, max: 2 })),
          restrictions: fc.array(
            fc.record({ vendorId: fc.integer({ min: 1, max: 400 }), purposeId: fc.constantFrom(1, 2, 3, 7, 8), type: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
            { maxLength: 12 },
          ),
        }),
        (spec) => {
          // Contiguous blocks make the encoder choose range encoding with real ranges.
          const blockIds = spec.blocks.flatMap(([start, len]) => Array.from({ length: len }, (_, i) => start + i));
          const clamp = (a: readonly number[]) => [...new Set(a)].filter((v) => v <= spec.gvlVendors);
          const tc = encodeWithLibrary({
            ...spec,
            vendorConsents: clamp([...spec.vendorConsents, ...blockIds]),
            vendorLIs: clamp(spec.vendorLIs),
            disclosed: clamp([...spec.disclosed, ...blockIds]),
            restrictions: spec.restrictions.filter((r) => r.vendorId <= spec.gvlVendors),
          });
          expect(scanTcString(tc, BOUND)).toMatchObject({ ok: true });
        },
      ),
      { seed: 424242, numRuns: 150 },
    );
  });

  it.each(SPEC_EXAMPLES)('accepts the spec\'s example string: $name', ({ tc }) => {
    expect(scanTcString(tc, BOUND)).toMatchObject({ ok: true });
  });

  it('accepts strings with the restriction shapes the encoder emits for whole-GVL restrictions', () => {
    const tc = encodeWithLibrary({
      gvlVendors: 1500,
      vendorConsents: Array.from({ length: 1500 }, (_, i) => i + 1),
      disclosed: Array.from({ length: 1500 }, (_, i) => i + 1),
      restrictions: Array.from({ length: 200 }, (_, i) => ({ vendorId: i * 7 + 1, purposeId: 2, type: 1 as const })),
    });
    expect(scanTcString(tc, BOUND)).toMatchObject({ ok: true });
  });
});
