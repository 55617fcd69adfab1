import { describe, expect, test } from 'vitest';
import { issues, run } from '../test-helpers.ts';

describe('@transform', () => {
  test('as a directive; an unknown fn is a compile error', () => {
    expect(run({ '@transform': { fn: 'upper', value: { '@path': '$.c' } } }, { c: 'usd' })).toBe('USD');
    expect(issues({ '@transform': { fn: 'eval', value: 1 } })[0]?.message).toMatch(/expected one of lower/);
    expect(issues({ '@transform': { fn: 'upper' } })[0]?.message).toMatch(/missing "value"/);
  });
});
