import { describe, expect, it } from 'vitest';
import { newRequestId, requestIdOf, safeRequestId, tagRequestId } from './request-id.ts';

describe('request ids', () => {
  it('keeps an inbound id of at most 64 of A-Z a-z 0-9 . _ -, and nothing else', () => {
    expect(safeRequestId('abc-DEF_1.2')).toBe('abc-DEF_1.2');
    expect(safeRequestId('x'.repeat(64))).toBe('x'.repeat(64));
    for (const bad of ['x'.repeat(65), '', 'a b', 'a\nb', 'é', '{"a":1}', '../x/'.replace('/', '%2f')]) expect(safeRequestId(bad)).toBeUndefined();
    // A repeated header arrives as an array: not one id, replaced.
    expect(safeRequestId(['a', 'b'])).toBeUndefined();
    expect(safeRequestId(undefined)).toBeUndefined();
  });

  it('makes new ids that are themselves safe and distinct', () => {
    const a = newRequestId();
    expect(safeRequestId(a)).toBe(a);
    expect(newRequestId()).not.toBe(a);
  });

  it('tags an object by identity: a copy (as a hit resumed from the journal is) has none', () => {
    const event = { messageId: 'm' };
    tagRequestId(event, 'r-1');
    expect(requestIdOf(event)).toBe('r-1');
    expect(requestIdOf({ ...event })).toBeUndefined();
    tagRequestId(event, undefined);
    expect(requestIdOf(event)).toBe('r-1');
    expect(requestIdOf(undefined)).toBeUndefined();
  });
});
