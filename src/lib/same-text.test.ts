import { describe, expect, it } from 'vitest';
import { sameText } from './same-text.ts';

describe('sameText', () => {
  it.each([
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['abc', 'ab', false],
    // Same string length, different byte length: must answer false, not throw.
    ['é'.repeat(43), 'a'.repeat(43), false],
    ['', '', true],
  ])('%j vs %j → %s', (a, b, want) => {
    expect(sameText(a, b)).toBe(want);
  });
});
