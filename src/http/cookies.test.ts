import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_COOKIES, readCookie } from './cookies.ts';

describe('readCookie', () => {
  it.each([
    ['a=1; cb_vid=v-123; b=2', 'cb_vid', 'v-123'],
    ['cb_vid=v-123', 'cb_vid', 'v-123'],
    ['  cb_vid = v-123 ;x=1', 'cb_vid', 'v-123'],
    ['x_cb_vid=no; cb_vid=yes', 'cb_vid', 'yes'],
    ['cb_vid="quoted"', 'cb_vid', 'quoted'],
    ['cb_vid=a%20b', 'cb_vid', 'a b'],
    ['cb_vid=%E0%A4%A', 'cb_vid', '%E0%A4%A'],
    ['cb_vid=first; cb_vid=second', 'cb_vid', 'first'],
    ['euconsent-v2=CPx.YA', 'euconsent-v2', 'CPx.YA'],
    ['cb_vid', 'cb_vid', undefined],
    ['', 'cb_vid', undefined],
    ['a=1;;; b=2', 'b', '2'],
    ['a==1', 'a', '=1'],
  ])('%j → %s = %j', (header, name, expected) => {
    expect(readCookie(header, name)).toBe(expected);
  });

  it('reads several Cookie headers as one list', () => {
    expect(readCookie(['a=1', 'b=2'], 'b')).toBe('2');
    expect(readCookie(undefined, 'b')).toBeUndefined();
  });

  it(`looks at no more than ${MAX_COOKIES} pairs`, () => {
    const header = `${Array.from({ length: MAX_COOKIES }, (_, i) => `c${i}=x`).join('; ')}; late=1`;
    expect(readCookie(header, 'c0')).toBe('x');
    expect(readCookie(header, 'late')).toBeUndefined();
  });

  it('never throws, and a found value comes from the header', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 10 }), (header, name) => {
        const v = readCookie(header, name);
        if (v !== undefined) expect(header.includes(name)).toBe(true);
      }),
      { seed: 20261123, numRuns: 2000 },
    );
  });
});
