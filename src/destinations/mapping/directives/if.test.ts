import { describe, expect, test } from 'vitest';
import { event, issues, run } from '../test-helpers.ts';

describe('@if', () => {
  test.each([
    [{ exists: { '@path': '$.properties.a' }, then: 'yes', else: 'no' }, 'yes'],
    [{ exists: { '@path': '$.properties.empty' }, then: 'yes', else: 'no' }, 'no'],
    [{ exists: { '@path': '$.properties.zero' }, then: 'yes' }, 'yes'],
    [{ equals: [{ '@path': '$.type' }, 'track'], then: 'T', else: 'other' }, 'T'],
    [{ equals: [{ '@path': '$.type' }, 'page'], then: 'P', else: 'other' }, 'other'],
    [{ equals: [{ '@path': '$.properties.a' }, { b: 1 }], then: 'deep', else: 'no' }, 'deep'],
    [{ equals: [{ '@path': '$.nope' }, { '@path': '$.nope2' }], then: 'absent==absent', else: 'never' }, 'never'],
  ])('%j', (arg, expected) => {
    expect(run({ '@if': arg }, event)).toBe(expected);
  });

  test('no else and a false condition is absent', () => {
    expect(run({ x: { '@if': { exists: { '@path': '$.nope' }, then: 1 } } }, event)).toEqual({});
  });

  test.each([
    [{ then: 1 }, /exactly one condition/],
    [{ exists: 1, equals: [1, 1], then: 1 }, /exactly one condition/],
    [{ exists: 1 }, /missing "then"/],
    [{ exists: 1, then: 1, otherwise: 2 }, /unknown key "otherwise"/],
    [{ equals: [1], then: 1 }, /\[mapping, mapping\]/],
    ['x', /expected an object/],
  ])('%j is a compile error', (arg, message) => {
    expect(issues({ '@if': arg })[0]?.message).toMatch(message);
  });
});
