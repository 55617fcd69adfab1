import { describe, expect, it } from 'vitest';
import { shapeOf } from './shape.ts';

describe('shapeOf', () => {
  it('keeps field names, nulls and leaf types, not values', () => {
    expect(shapeOf({ b: 'x', a: null, c: { n: 1, t: true } })).toEqual({ a: 'null', b: 'string', c: { n: 'number', t: 'boolean' } });
    expect(shapeOf({ userId: null, anonymousId: 'a' })).not.toEqual(shapeOf({ userId: 'u', anonymousId: 'a' }));
  });

  it('an array is the set of its item shapes, whatever its length', () => {
    expect(shapeOf([{ brand: 'A' }, { brand: 'B' }, { brand: 'C' }])).toEqual(shapeOf([{ brand: 'Z' }]));
    expect(shapeOf([1, 'x', 2])).toEqual({ '[]': ['number', 'string'] });
  });
});
