import { describe, expect, test } from 'vitest';
import { compileMapping } from '../compile.ts';
import { event, issues, run } from '../test-helpers.ts';

describe('@setting', () => {
  test('reads a declared setting; unset or empty is absent', () => {
    expect(run({ '@setting': 'id' }, event, { id: 'abc' })).toBe('abc');
    expect(run({ x: { '@setting': 'id' } }, event, { id: '' })).toEqual({});
    const compiled = compileMapping({ x: { '@setting': 'id' } }, { settings: ['id'] });
    expect(compiled.evaluate(event, {})).toEqual({});
  });

  test('an undeclared setting is a compile error', () => {
    expect(issues({ '@setting': 'missing' }, ['other'])).toEqual([{ path: 'm.@setting', message: 'undeclared setting "missing"' }]);
  });
});
