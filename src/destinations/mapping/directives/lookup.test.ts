import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compileMapping } from '../compile.ts';
import { issues, run } from '../test-helpers.ts';
import { MAX_LOOKUP_ENTRIES, MAX_LOOKUP_KEY_LENGTH } from './lookup.ts';

describe('@lookup', () => {
  const names = { 'Order Completed': 'Purchase', purchase: 'Purchase', 'Product Added': 'AddToCart' };

  test('a hit yields the table value; a miss the default, or absent without one', () => {
    const mapping = { '@lookup': { value: { '@path': '$.event' }, table: names, default: { '@path': '$.event' } } };
    expect(run(mapping, { event: 'Order Completed' })).toBe('Purchase');
    expect(run(mapping, { event: 'purchase' })).toBe('Purchase');
    expect(run(mapping, { event: 'Newsletter Joined' })).toBe('Newsletter Joined');
    expect(run(mapping, {})).toBeUndefined();
    expect(run({ '@lookup': { value: { '@path': '$.event' }, table: names } }, { event: 'other' })).toBeUndefined();
  });

  test('keys match exactly unless ignoreCase; only strings are looked up', () => {
    const exact = { '@lookup': { value: { '@path': '$.v' }, table: names } };
    const folded = { '@lookup': { value: { '@path': '$.v' }, table: names, ignoreCase: true } };
    expect(run(exact, { v: 'order completed' })).toBeUndefined();
    expect(run(folded, { v: 'order completed' })).toBe('Purchase');
    expect(run(folded, { v: 'PURCHASE' })).toBe('Purchase');
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: { 1: 'one', true: 'yes' } } }, { v: 1 })).toBeUndefined();
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: { 1: 'one' } } }, { v: '1' })).toBe('one');
  });

  test('table values are literals of any JSON type, never evaluated', () => {
    const mapping = { '@lookup': { value: 'a', table: { a: { '@path': '$.x' } } } };
    expect(run(mapping, { x: 1 })).toEqual({ '@path': '$.x' });
    expect(run({ '@lookup': { value: 'b', table: { b: [1, true] } } }, {})).toEqual([1, true]);
  });

  test('inherited property names are never table entries', () => {
    const mapping = { '@lookup': { value: { '@path': '$.v' }, table: { a: 1 }, default: 'miss' } };
    for (const v of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype']) {
      expect(run(mapping, { v })).toBe('miss');
    }
    // A table may name them itself: they are then ordinary keys.
    const own = JSON.parse('{"__proto__": "p", "constructor": "c"}') as Record<string, unknown>;
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: own } }, { v: '__proto__' })).toBe('p');
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: own } }, { v: 'constructor' })).toBe('c');
  });

  test('a bad table is a load error, with its path', () => {
    expect(issues({ '@lookup': { value: 'a', table: [] } })).toEqual([{ path: 'm.@lookup.table', message: 'expected an object of key → literal value' }]);
    expect(issues({ '@lookup': { value: 'a', table: {} } })[0]?.message).toMatch(/expected 1 to 1000 entries/);
    const big = Object.fromEntries(Array.from({ length: MAX_LOOKUP_ENTRIES + 1 }, (_, i) => [`k${i}`, i]));
    expect(issues({ '@lookup': { value: 'a', table: big } })[0]?.message).toMatch(/expected 1 to 1000 entries/);
    expect(issues({ '@lookup': { value: 'a', table: { A: 1, a: 2 }, ignoreCase: true } })).toEqual([
      { path: 'm.@lookup.table.a', message: 'duplicate key (keys are compared ignoring case)' },
    ]);
    expect(issues({ '@lookup': { value: 'a', table: { a: null, b: '' } } }).map((i) => i.path)).toEqual(['m.@lookup.table.a', 'm.@lookup.table.b']);
    expect(issues({ '@lookup': { value: 'a', table: { ['x'.repeat(MAX_LOOKUP_KEY_LENGTH + 1)]: 1 } } })[0]?.message).toMatch(/at most 200 characters/);
    expect(issues({ '@lookup': { value: 'a', table: { a: 1 }, ignoreCase: 'yes' } })[0]?.path).toBe('m.@lookup.ignoreCase');
    expect(issues({ '@lookup': { table: { a: 1 } } })[0]?.message).toBe('missing "value"');
    expect(issues({ '@lookup': { value: 'a', table: { a: 1 }, else: 2 } })[0]?.message).toBe('unknown key "else"');
    expect(issues({ '@lookup': { value: { '@nope': 1 }, table: { a: 1 } } })[0]?.path).toBe('m.@lookup.value');
  });

  test('property: the result is the own table entry for the value, else the default', () => {
    const key = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'prototype', 'valueOf'));
    const literal = fc.oneof(fc.string({ minLength: 1 }), fc.integer(), fc.boolean());
    fc.assert(
      fc.property(fc.dictionary(key, literal, { minKeys: 1, maxKeys: 20 }), fc.oneof(key, fc.jsonValue()), fc.boolean(), (table, value, ignoreCase) => {
        const keys = Object.keys(table);
        fc.pre(!ignoreCase || new Set(keys.map((k) => k.toLowerCase())).size === keys.length);
        const compiled = compileMapping({ '@lookup': { value: { '@literal': value }, table, ignoreCase, default: '<miss>' } });
        expect(compiled.issues).toEqual([]);
        const hit = typeof value === 'string' ? keys.find((k) => (ignoreCase ? k.toLowerCase() === value.toLowerCase() : k === value)) : undefined;
        expect(compiled.evaluate({})).toEqual(hit === undefined ? '<miss>' : table[hit]);
      }),
      { numRuns: 300 },
    );
  });

  test('property: never throws, whatever the value; a long value is a miss without folding', () => {
    const compiled = compileMapping({ '@lookup': { value: { '@path': '$.v' }, table: { a: 1 }, ignoreCase: true, default: 0 } });
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect([0, 1]).toContain(compiled.evaluate({ v }));
      }),
    );
    expect(compiled.evaluate({ v: 'A'.repeat(10_000) })).toBe(0);
  });
});
