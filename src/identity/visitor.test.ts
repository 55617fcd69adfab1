import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSources, ID_PATTERN, validId, visitorIdFrom, type HitSources, type IdSource } from './visitor.ts';

const sources: IdSource[] = [{ cookie: 'cb_vid' }, { query: 'visitor_id' }, { body: 'anonymousId' }, { body: 'context.traits.vid' }, { header: 'X-Visitor-Id' }];
const compiled = compileSources(sources);

function hit(over: { cookie?: string; query?: string; body?: unknown; header?: string | string[] } = {}): HitSources {
  const headers: HitSources['headers'] = {};
  if (over.cookie !== undefined) headers.cookie = over.cookie;
  if (over.header !== undefined) headers['x-visitor-id'] = over.header;
  return { headers, query: new URLSearchParams(over.query ?? ''), body: over.body ?? {} };
}

describe('visitorIdFrom', () => {
  it.each([
    ['the cookie first', hit({ cookie: 'cb_vid=c-1', query: 'visitor_id=q-1', body: { anonymousId: 'b-1' } }), { id: 'c-1', source: 'cookie:cb_vid' }],
    ['then the query', hit({ query: 'visitor_id=q-1', body: { anonymousId: 'b-1' } }), { id: 'q-1', source: 'query:visitor_id' }],
    ['then the body', hit({ body: { anonymousId: 'b-1' } }), { id: 'b-1', source: 'body:anonymousId' }],
    ['a nested body field', hit({ body: { context: { traits: { vid: 'n-1' } } } }), { id: 'n-1', source: 'body:context.traits.vid' }],
    ['then the header (any case)', hit({ header: 'h-1' }), { id: 'h-1', source: 'header:x-visitor-id' }],
    ['an invalid cookie falls through', hit({ cookie: 'cb_vid=bad id!', body: { anonymousId: 'b-1' } }), { id: 'b-1', source: 'body:anonymousId' }],
    ['a too long id falls through', hit({ query: `visitor_id=${'a'.repeat(129)}`, header: 'h-1' }), { id: 'h-1', source: 'header:x-visitor-id' }],
    ['a repeated header is skipped', hit({ header: ['h-1', 'h-2'] }), undefined],
    ['an object is not an id', hit({ body: { anonymousId: { id: 'x' } } }), undefined],
    ['a GA client id', hit({ body: { anonymousId: '1234567890.1699999999' } }), { id: '1234567890.1699999999', source: 'body:anonymousId' }],
    ['nothing', hit(), undefined],
  ])('%s', (_name, h, expected) => {
    expect(visitorIdFrom(compiled, h)).toEqual(expected);
  });

  it('bounds the length (configurable)', () => {
    expect(visitorIdFrom(compiled, hit({ body: { anonymousId: 'abcdef' } }), 5)).toBeUndefined();
    expect(validId('a'.repeat(128))).toBe('a'.repeat(128));
    expect(validId('a'.repeat(129))).toBeUndefined();
    expect(validId(42)).toBe('42');
    expect(validId(1.5)).toBeUndefined();
    expect(validId('')).toBeUndefined();
  });

  it('never throws, and only ever returns an id of the allowed shape', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 3 }), (cookie, query, anonymousId) => {
        const got = visitorIdFrom(compiled, hit({ cookie: `cb_vid=${cookie}`, query: `visitor_id=${encodeURIComponent(query)}`, body: { anonymousId } }));
        if (got !== undefined) {
          expect(got.id).toMatch(ID_PATTERN);
          expect(got.id.length).toBeLessThanOrEqual(128);
        }
      }),
      { seed: 20261123, numRuns: 1000 },
    );
  });
});
