import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compileMapping } from '../compile.ts';
import { issues, run } from '../test-helpers.ts';
import { MAX_MERGE_OBJECTS } from './merge.ts';

describe('@merge', () => {
  test('later objects win; non-objects and absent parts are skipped; nothing left is absent', () => {
    expect(run({ '@merge': [{ a: 1, b: 1 }, { '@path': '$.o' }, 'x', { '@path': '$.none' }] }, { o: { b: 2, c: 3 } })).toEqual({ a: 1, b: 2, c: 3 });
    expect(run({ '@merge': [{ '@path': '$.none' }, [1]] }, {})).toBeUndefined();
  });

  test('keys from data cannot reach the prototype', () => {
    const root = JSON.parse('{"o": {"__proto__": {"polluted": true}, "constructor": 1, "ok": 1}}') as unknown;
    const out = run({ '@merge': [{ '@path': '$.o' }] }, root) as Record<string, unknown>;
    expect(out).toEqual({ ok: 1 });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('argument errors are compile errors with their path', () => {
    expect(issues({ '@merge': {} })[0]).toEqual({ path: 'm.@merge', message: `expected an array of 1 to ${MAX_MERGE_OBJECTS} mappings` });
    expect(issues({ '@merge': [] })[0]?.path).toBe('m.@merge');
    expect(issues({ '@merge': Array.from({ length: MAX_MERGE_OBJECTS + 1 }, () => ({})) })[0]?.path).toBe('m.@merge');
    expect(issues({ '@merge': [{ x: { '@nope': 1 } }] })[0]?.path).toBe('m.@merge[0].x');
  });

  test('never throws on any JSON', () => {
    const compiled = compileMapping({ '@merge': [{ '@path': '$.a' }, { '@path': '$.b' }, { '@path': '$' }] });
    fc.assert(fc.property(fc.jsonValue(), (root) => void compiled.evaluate(root)));
  });
});
