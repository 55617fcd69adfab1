import { describe, expect, it } from 'vitest';
import { parseRetryAfter, singleRetryAfter } from './retry-after.ts';

const NOW = Date.UTC(2026, 2, 8, 12, 0, 0);

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  it.each<[string, number | undefined]>([
    ['120', 120_000],
    ['0', 0],
    [' 5 ', 5_000],
    ['Sun, 08 Mar 2026 12:00:30 GMT', 30_000],
    ['Sunday, 08-Mar-26 12:01:00 GMT', 60_000],
    ['Sun Mar  8 12:00:10 2026', 10_000],
    ['Sun, 08 Mar 2026 11:00:00 GMT', 0], // a date in the past: no wait
    ['-1', undefined],
    ['1.5', undefined],
    ['soon', undefined],
  ])('%j → %j ms', (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });
});

describe('singleRetryAfter', () => {
  it.each<[string | string[] | undefined, string | undefined]>([
    ['7', '7'],
    [undefined, undefined],
    [['7', '7'], '7'],
    [['7', '8'], undefined], // disagreeing repeats are not guessed at
    [[], undefined],
  ])('%j → %j', (value, expected) => {
    expect(singleRetryAfter(value)).toBe(expected);
  });
});
