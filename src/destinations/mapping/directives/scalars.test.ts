import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compileMapping } from '../compile.ts';
import { run, issues } from '../test-helpers.ts';
import { MAX_SCALAR_FIELDS } from './scalars.ts';

describe('@scalars', () => {
  const props = { s: 'text', n: 4.5, b: true, f: false, z: 0, e: '', nil: null, inf: 'Infinity', o: { x: 1 }, a: [1] };

  test('keeps one kind of scalar, in order; booleans count as text', () => {
    expect(run({ '@scalars': { value: { '@path': '$' }, type: 'string' } }, props)).toEqual({ s: 'text', b: 'true', f: 'false', inf: 'Infinity' });
    expect(run({ '@scalars': { value: { '@path': '$' }, type: 'number' } }, props)).toEqual({ n: 4.5, z: 0 });
  });

  test('omit and max bound what is kept; nothing kept is absent', () => {
    expect(run({ '@scalars': { value: { '@path': '$' }, type: 'string', omit: ['s', 'b'], max: 1 } }, props)).toEqual({ f: 'false' });
    expect(run({ '@scalars': { value: { '@path': '$.o' }, type: 'string' } }, props)).toBeUndefined();
    expect(run({ '@scalars': { value: { '@path': '$.a' }, type: 'number' } }, props)).toBeUndefined();
    expect(run({ '@scalars': { value: { '@path': '$.missing' }, type: 'number' } }, props)).toBeUndefined();
  });

  test(`at most ${MAX_SCALAR_FIELDS} fields from a hostile object`, () => {
    const big = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    const out = run({ '@scalars': { value: { '@path': '$' }, type: 'number' } }, big) as Record<string, number>;
    expect(Object.keys(out)).toHaveLength(MAX_SCALAR_FIELDS);
    expect(out.k0).toBe(0);
  });

  test('argument errors are compile errors with their path', () => {
    expect(issues({ '@scalars': { value: 1, type: 'date' } })[0]).toEqual({ path: 'm.@scalars.type', message: 'expected "string" or "number"' });
    expect(issues({ '@scalars': { value: 1, type: 'string', omit: 'x' } })[0]?.path).toBe('m.@scalars.omit');
    expect(issues({ '@scalars': { value: 1, type: 'string', max: 0 } })[0]?.path).toBe('m.@scalars.max');
    expect(issues({ '@scalars': { value: 1, type: 'string', extra: 1 } })[0]?.message).toMatch(/unknown key "extra"/);
  });

  test('never throws, and keeps only scalars of its kind, on any JSON', () => {
    const compiled = compileMapping({ '@scalars': { value: { '@path': '$' }, type: 'string' } });
    fc.assert(
      fc.property(fc.jsonValue(), (root) => {
        const out = compiled.evaluate(root);
        if (out === undefined) return;
        expect(Object.values(out as object).every((v) => typeof v === 'string' && v !== '')).toBe(true);
      }),
    );
  });
});
