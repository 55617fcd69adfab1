import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compileMapping } from './compile.ts';
import { event, issues, run } from './test-helpers.ts';

describe('literals', () => {
  test.each([
    ['string', 'hello'],
    ['number', 42.5],
    ['boolean', false],
    ['null', null],
    ['array', [1, 'two', null, [3]]],
    ['object', { a: 1, b: { c: [true] } }],
  ])('%s maps to itself', (_label, value) => {
    expect(run(value, event)).toEqual(value);
  });


  test('absent values are left out of objects and arrays', () => {
    expect(run({ a: { '@path': '$.missing' }, b: [{ '@path': '$.missing' }, 1], c: 2 }, event)).toEqual({ b: [1], c: 2 });
  });

  test('constant output is frozen so a render cannot alter the template', () => {
    const out = run({ a: { b: 1 } }, event) as { a: { b: number } };
    expect(Object.isFrozen(out.a)).toBe(true);
  });
});

describe('directive syntax errors are found at compile time, all at once, with their path', () => {
  test('unknown directive', () => {
    expect(issues({ params: { value: { '@foo': 1 } } })).toEqual([
      { path: 'm.params.value', message: expect.stringContaining('unknown directive @foo') },
    ]);
  });

  test('a directive with sibling keys', () => {
    expect(issues({ '@path': '$.a', other: 1 })[0]?.message).toMatch(/only key/);
  });

  test('__proto__ as an output key', () => {
    expect(issues(JSON.parse('{"__proto__": {"polluted": true}}'))).toEqual([{ path: 'm.__proto__', message: expect.stringMatching(/not allowed/) }]);
  });

  test('every problem is reported, not just the first', () => {
    const found = issues({
      a: { '@foo': 1 },
      b: { '@path': 'no-dollar' },
      c: { '@setting': 'undeclared' },
      d: { '@transform': { fn: 'explode', value: 1 } },
      e: { '@hash': { kind: 'email' } },
    });
    expect(found.map((i) => i.path)).toEqual(['m.a', 'm.b.@path', 'm.c.@setting', 'm.d.@transform.fn', 'm.e.@hash']);
  });

  test('mapping depth is bounded', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { x: deep };
    expect(issues(deep)[0]?.message).toMatch(/nested deeper/);
  });
});

describe('readsEvent: whether a mapping can differ from one event to the next', () => {
  const reads = (mapping: unknown): boolean => compileMapping(mapping, { settings: ['id', 'token'] }).readsEvent;

  test('literals and settings alone do not read the event', () => {
    expect(reads('https://vendor.example/collect')).toBe(false);
    expect(reads({ a: { '@setting': 'id' }, b: '{{settings.token}}', c: [1, { '@path': '$.settings.id' }] })).toBe(false);
    expect(reads({ '@transform': { fn: 'upper', value: { '@setting': 'id' } } })).toBe(false);
  });

  test('any path into the event reads it, however deep it sits', () => {
    expect(reads({ a: { b: [{ '@path': '$.userId' }] } })).toBe(true);
    expect(reads({ '@template': 'https://vendor.example/{{$.properties.region}}/collect' })).toBe(true);
    expect(reads({ '@if': { exists: { '@path': '$$.userId' }, then: 'a', else: 'b' } })).toBe(true);
    expect(reads({ '@arrayPath': ['$.properties.list', { id: { '@path': '$.id' } }] })).toBe(true);
  });

  test('a mapping that does not read the event evaluates the same for every event', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const m = compileMapping({ u: { '@template': 'https://x.example/{{settings.id}}' }, k: { '@setting': 'token' } }, { settings: ['id', 'token'] });
        expect(m.readsEvent).toBe(false);
        expect(m.evaluate(a, { id: 'i', token: 't' })).toEqual(m.evaluate(b, { id: 'i', token: 't' }));
      }),
    );
  });
});

describe('properties of the whole language', () => {
  const noDirectiveKeys = (value: unknown): boolean => {
    if (Array.isArray(value)) return value.every(noDirectiveKeys);
    if (typeof value === 'object' && value !== null) {
      return Object.entries(value).every(([k, v]) => !k.startsWith('@') && k !== '__proto__' && noDirectiveKeys(v));
    }
    return true;
  };

  test('arbitrary JSON literal mappings map to themselves', () => {
    fc.assert(
      fc.property(fc.jsonValue().filter(noDirectiveKeys), (value) => {
        expect(run(value, event)).toEqual(value);
      }),
    );
  });
});
