import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { COUNTRIES } from './country-codes.ts';
import { birthDate, countryCode, phoneDigits, placeKey, usStateCode } from './customer-info.ts';
import { US_STATES } from './us-states.ts';

describe('the country and state tables', () => {
  test.each([
    ['countries', COUNTRIES, 249],
    ['US states, DC, territories and armed forces', US_STATES, 50 + 1 + 6 + 3],
  ] as const)('%s: two-letter codes, and no name that could mean two codes', (_, table, size) => {
    expect(Object.keys(table)).toHaveLength(size);
    const owner = new Map<string, string>();
    for (const [code, names] of Object.entries(table)) {
      expect(code).toMatch(/^[A-Z]{2}$/);
      for (const key of [code, ...names].map(placeKey)) {
        expect(key).not.toBe('');
        expect(owner.get(key) ?? code).toBe(code);
        owner.set(key, code);
      }
    }
  });

  test('every country has its alpha-3 code first', () => {
    const alpha3 = Object.values(COUNTRIES).map((names) => names[0]);
    for (const code of alpha3) expect(code).toMatch(/^[A-Z]{3}$/);
    expect(new Set(alpha3).size).toBe(alpha3.length);
  });

  test('every code and name is found, in any case and with the punctuation people type', () => {
    for (const [code, names] of Object.entries(COUNTRIES)) {
      for (const name of [code, ...names]) {
        expect(countryCode(name)).toBe(code.toLowerCase());
        expect(countryCode(` ${name.toUpperCase()}. `)).toBe(code.toLowerCase());
      }
    }
    for (const [code, names] of Object.entries(US_STATES)) {
      for (const name of [code, ...names]) expect(usStateCode(name.toLowerCase())).toBe(code.toLowerCase());
    }
  });
});

describe('bounded and total on any text', () => {
  test('property: never throws; results have their documented shape', () => {
    const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.stringMatching(/^[0-9 ()+.\-/]{0,30}$/));
    fc.assert(
      fc.property(text, fc.option(fc.constantFrom('US', 'GB', 'DE', 'FR', 'Atlantis', 'United Kingdom', ''), { nil: undefined }), (input, country) => {
        const phone = phoneDigits(input, country);
        if (phone !== undefined) expect(phone).toMatch(/^[1-9]\d*$/);
        const date = birthDate(input);
        if (date !== undefined) expect(date).toMatch(/^(19|[2-9]\d)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/);
        const cc = countryCode(input);
        if (cc !== undefined) expect(cc).toMatch(/^[a-z]{2}$/);
        const st = usStateCode(input);
        if (st !== undefined) expect(st).toMatch(/^[a-z]{2}$/);
      }),
      { numRuns: 500 },
    );
  });

  test('over-long input is not parsed', () => {
    expect(phoneDigits(`+44 ${'2'.repeat(70)}`)).toBeUndefined();
    expect(countryCode('a'.repeat(101))).toBeUndefined();
    expect(usStateCode('a'.repeat(101))).toBeUndefined();
    expect(birthDate(`1990-01-01T${'0'.repeat(50)}`)).toBeUndefined();
  });
});
