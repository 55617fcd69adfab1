import { describe, expect, test } from 'vitest';
import { MAX_ARRAY_ITEMS } from '../limits.ts';
import { event, issues, run } from '../test-helpers.ts';

describe('@arrayPath', () => {
  test('maps each element; $ is the element, $$ the event', () => {
    expect(run({ '@arrayPath': ['$.properties.list', { id: { '@path': '$.id' }, ev: { '@path': '$$.event' } }] }, event)).toEqual([
      { id: 'x', ev: 'Signed Up' },
      { id: 'y', ev: 'Signed Up' },
    ]);
  });

  test('settings stay reachable inside: @setting and $$.settings.<name>', () => {
    expect(run({ '@arrayPath': ['$.properties.list', [{ '@setting': 's' }, { '@path': '$$.settings.s' }]] }, event, { s: 'v' })).toEqual([
      ['v', 'v'],
      ['v', 'v'],
    ]);
  });

  test('absent results are dropped; nothing left, a non-array or a missing path is absent', () => {
    expect(run({ '@arrayPath': ['$.properties.list', { '@path': '$.nope' }] }, event)).toBeUndefined();
    expect(run({ '@arrayPath': ['$.properties.a', { '@path': '$' }] }, event)).toBeUndefined();
    expect(run({ '@arrayPath': ['$.missing', { '@path': '$' }] }, event)).toBeUndefined();
  });

  test('nested arrays: the inner $ is the inner element', () => {
    const root = { rows: [{ cells: [1, 2] }, { cells: [3] }] };
    expect(run({ '@arrayPath': ['$.rows', { '@arrayPath': ['$.cells', { '@path': '$' }] }] }, root)).toEqual([[1, 2], [3]]);
  });

  test(`at most ${MAX_ARRAY_ITEMS} elements are mapped`, () => {
    const root = { xs: Array.from({ length: MAX_ARRAY_ITEMS + 50 }, (_, i) => i) };
    expect((run({ '@arrayPath': ['$.xs', { '@path': '$' }] }, root) as unknown[]).length).toBe(MAX_ARRAY_ITEMS);
  });

  test('shape errors', () => {
    expect(issues({ '@arrayPath': '$.x' })[0]?.message).toMatch(/\[path, itemMapping\]/);
    expect(issues({ '@arrayPath': ['$.x', { '@nope': 1 }] })).toEqual([{ path: 'm.@arrayPath[1]', message: expect.stringMatching(/unknown directive/) }]);
  });
});
