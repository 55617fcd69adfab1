import { describe, expect, it } from 'vitest';
import { splitRows } from './row-split.ts';

describe('splitRows', () => {
  it.each([
    ['no failure: all delivered', 3, [], { delivered: [0, 1, 2], rejected: [], transient: [] }],
    ['final rows grouped by code', 4, [{ index: 3, code: 'B', transient: false }, { index: 0, code: 'A', transient: false }, { index: 1, code: 'A', transient: false }], { delivered: [2], rejected: [['A', [0, 1]], ['B', [3]]], transient: [] }],
    ['transient rows apart', 3, [{ index: 1, code: 'T', transient: true }], { delivered: [0, 2], rejected: [], transient: [1] }],
    ['every row failed', 2, [{ index: 0, code: 'A', transient: false }, { index: 1, code: 'T', transient: true }], { delivered: [], rejected: [['A', [0]]], transient: [1] }],
    ['an index outside the batch is ignored', 1, [{ index: 5, code: 'A', transient: false }], { delivered: [0], rejected: [], transient: [] }],
  ])('%s', (_name, size, failures, expected) => {
    const split = splitRows(size, failures);
    expect({ delivered: split.delivered, rejected: [...split.rejected], transient: split.transient }).toEqual(expected);
  });
});
