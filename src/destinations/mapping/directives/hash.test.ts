import { describe, expect, test } from 'vitest';
import { issues, run, sha } from '../test-helpers.ts';

describe('@hash', () => {
  test('as a directive', () => {
    expect(run({ '@hash': { kind: 'email', value: { '@path': '$.e' } } }, { e: 'A@B.C' })).toBe(sha('a@b.c'));
    expect(issues({ '@hash': { kind: 'ssn', value: 1 } })[0]?.message).toMatch(/expected one of email/);
  });

  test('"country" reads a national phone number; it is for phones only', () => {
    const mapping = { '@hash': { kind: 'phone', value: { '@path': '$.p' }, country: { '@path': ['$.c', '$.d'] } } };
    expect(run(mapping, { p: '020 7946 0958', c: 'GB' })).toBe(sha('442079460958'));
    expect(run(mapping, { p: ['020 7946 0958', '07911 123456'], d: 'United Kingdom' })).toEqual([sha('442079460958'), sha('447911123456')]);
    expect(run(mapping, { p: '+1 650 555 1212', c: 'GB' })).toBe(sha('16505551212'));
    // No country, or one that is not a string: the digits as they are.
    expect(run(mapping, { p: '020 7946 0958' })).toBe(sha('2079460958'));
    expect(run(mapping, { p: '020 7946 0958', c: 44 })).toBe(sha('2079460958'));
    expect(issues({ '@hash': { kind: 'email', value: 'a@b.c', country: 'US' } })).toEqual([
      { path: 'm.@hash.country', message: '"country" applies to kinds "phone" and "googlePhone" only' },
    ]);
  });
});
