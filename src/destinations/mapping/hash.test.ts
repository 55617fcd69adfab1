import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { hashValue } from './hash.ts';
import { HASH_KINDS, type HashKind } from './normalize.ts';
import { sha } from './test-helpers.ts';

describe('@hash', () => {
  // Input / digest pairs published in Meta's customer-information-parameters documentation.
  test.each<[HashKind, string, string]>([
    ['email', 'John_Smith@gmail.com', '62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f'],
    ['phone', '1 (650) 555-1212', 'e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176'],
    ['name', 'Mary', '6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec'],
    ['name', '정', '8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14'],
    ['name', 'Valéry', '08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c'],
  ])('Meta example: %s %s', (kind, input, digest) => {
    expect(hashValue(kind, input)).toBe(digest);
  });

  test('no kind ever hashes an empty or blank value', () => {
    for (const kind of HASH_KINDS) {
      for (const blank of ['', ' ', '\t\n', '\u00a0']) expect(hashValue(kind, blank)).toBeUndefined();
    }
  });

  test('the digest of an empty string is never passed through', () => {
    const empty = sha('');
    for (const kind of HASH_KINDS) {
      expect(hashValue(kind, empty)).toBeUndefined();
      expect(hashValue(kind, empty.toUpperCase())).toBeUndefined();
      expect(hashValue(kind, [empty, 'a@b.c'])).toEqual(kind === 'email' ? [sha('a@b.c')] : hashValue(kind, ['a@b.c']));
    }
  });

  test('a value that already is a SHA-256 digest passes through, lowercased', () => {
    const digest = sha('x@example.com');
    expect(hashValue('email', digest.toUpperCase())).toBe(digest);
    expect(hashValue('phone', ` ${digest} `)).toBe(digest);
  });

  test('arrays hash each element and drop empty ones; numbers are read as text', () => {
    expect(hashValue('email', ['A@b.c', '', 7, null, { x: 1 }])).toEqual([sha('a@b.c'), sha('7')]);
    expect(hashValue('email', [])).toBeUndefined();
    expect(hashValue('phone', 16505551212)).toBe(sha('16505551212'));
    expect(hashValue('email', { a: 1 })).toBeUndefined();
    expect(hashValue('email', true)).toBeUndefined();
  });

  test('property: never re-hashes a 64-hex digest', () => {
    fc.assert(
      fc.property(fc.constantFrom(...HASH_KINDS), fc.stringMatching(/^[0-9a-fA-F]{64}$/), fc.constantFrom('', ' ', '\t'), (kind, digest, pad) => {
        expect(hashValue(kind, `${pad}${digest}${pad}`)).toBe(digest.toLowerCase());
      }),
    );
  });
});
