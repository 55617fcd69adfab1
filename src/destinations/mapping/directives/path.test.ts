import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compileMapping } from '../compile.ts';
import { event, issues, run } from '../test-helpers.ts';

describe('@path', () => {
  test.each([
    ['$.properties.a.b', 1],
    ['$.properties.list[1].id', 'y'],
    ['$.properties["odd key"]', 'odd'],
    ["$.properties['odd key']", 'odd'],
    ['$.properties.zero', 0],
    ['$.properties.no', false],
    ['$$.event', 'Signed Up'],
  ])('%s', (path, expected) => {
    expect(run({ '@path': path }, event)).toEqual(expected);
  });

  test.each([
    ['$.properties.missing'],
    ['$.properties.empty'],
    ['$.properties.nil'],
    ['$.properties.list[5]'],
    ['$.properties.list.length'],
    ['$.properties.a[0]'],
    ['$.messageId.length'],
    ['$.toString'],
    ['$.properties.hasOwnProperty'],
  ])('%s is absent', (path) => {
    expect(run({ '@path': path }, event)).toBeUndefined();
  });

  test('$ alone is the event itself (without settings)', () => {
    expect(run({ '@path': '$' }, event, { k: 'v' })).toBe(event);
  });

  test('fallbacks: the first present (not missing, null or "") wins', () => {
    expect(run({ '@path': ['$.properties.missing', '$.properties.nil', '$.properties.empty', '$.properties.zero'] }, event)).toBe(0);
    expect(run({ '@path': ['$.properties.missing', '$.nope'] }, event)).toBeUndefined();
  });

  test('$.settings.<name> reads a declared setting', () => {
    expect(run({ '@path': '$.settings.pixelId' }, event, { pixelId: '123' })).toBe('123');
    expect(issues({ '@path': '$.settings.nope' })[0]?.message).toMatch(/undeclared setting "nope"/);
  });

  test('a path list must be non-empty strings', () => {
    expect(issues({ '@path': [] })[0]?.message).toMatch(/list of 1\.\./);
    expect(issues({ '@path': ['$.a', 3] })).toEqual([{ path: 'm.@path[1]', message: 'expected a path string' }]);
  });

  test('never throws on arbitrary JSON input', () => {
    const segment = fc.oneof(fc.constantFrom('a', 'b', '0', 'length', 'settings', 'x-y'), fc.nat({ max: 4 }));
    const pathArb = fc.array(segment, { maxLength: 6 }).map((segs) => '$' + segs.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join(''));
    fc.assert(
      fc.property(pathArb, fc.jsonValue(), (path, root) => {
        const compiled = compileMapping({ out: { '@path': [path, '$$'] } }, { settings: ['a'] });
        expect(() => compiled.evaluate(root, { a: 1 })).not.toThrow();
      }),
    );
  });

  test('compiling arbitrary strings as paths never throws', () => {
    fc.assert(
      fc.property(fc.string(), fc.jsonValue(), (path, root) => {
        const compiled = compileMapping({ '@path': path });
        expect(() => compiled.evaluate(root)).not.toThrow();
      }),
    );
  });
});
