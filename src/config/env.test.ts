import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expandEnv, type EnvIssue } from './env.ts';

describe('expandEnv', () => {
  it.each([
    ['${A}', { A: 'x' }, 'x', 0],
    ['pre-${A}-post', { A: 'x' }, 'pre-x-post', 0],
    ['${A:-dflt}', {}, 'dflt', 0],
    ['${A:-dflt}', { A: '' }, 'dflt', 0],
    ['${A:-}', {}, '', 0],
    ['$${A}', { A: 'x' }, '${A}', 0],
    ['${A}', {}, '${A}', 1],
    ['${1A}', {}, '${1A}', 0],
    ['no refs', {}, 'no refs', 0],
  ])('%s with %j → %s', (input, env, out, issues) => {
    const found: EnvIssue[] = [];
    expect(expandEnv(input, env, found)).toBe(out);
    expect(found.length).toBe(issues);
  });

  it('walks arrays and objects and reports the path of an unset variable', () => {
    const found: EnvIssue[] = [];
    const out = expandEnv({ a: [1, { b: '${B}' }], c: true }, {}, found);
    expect(out).toEqual({ a: [1, { b: '${B}' }], c: true });
    expect(found).toEqual([{ path: ['a', 1, 'b'], message: 'environment variable B is not set (write ${B:-} to allow it empty)' }]);
  });

  it('never throws, and a value without references comes back unchanged', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.dictionary(fc.string(), fc.string()), (json, env) => {
        const found: EnvIssue[] = [];
        const out = expandEnv(json, env, found);
        if (!JSON.stringify(json).includes('${')) expect(out).toEqual(json);
      }),
    );
  });

  it('substituted values are inserted as text, never re-expanded', () => {
    fc.assert(
      fc.property(fc.string(), (v) => {
        expect(expandEnv('${X}', { X: `${v}\${Y}` }, [])).toBe(`${v}\${Y}`);
      }),
    );
  });
});
