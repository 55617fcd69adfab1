import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../errors.ts';
import { parseOr400 } from '../consent/validate.ts';
import { deadBodySchema, deadListSchema, MAX_DEAD_BATCH, MAX_DEAD_PAGE, toDeadFilter } from './filter.ts';

const parse = (schema: typeof deadListSchema | typeof deadBodySchema, input: unknown) => toDeadFilter('shop', parseOr400(schema, input, 'query'));

describe('dead-letter filters', () => {
  it('reads a query string: times in any accepted form, digits for the limit', () => {
    expect(parse(deadListSchema, { destinationId: 'meta', reason: 'status_400', since: '2026-01-01T00:00:00Z', before: '1767312000', limit: '50' })).toEqual({
      siteId: 'shop',
      destinationId: 'meta',
      reason: 'status_400',
      since: Date.parse('2026-01-01T00:00:00Z'),
      before: 1_767_312_000_000,
      limit: 50,
    });
    expect(parse(deadListSchema, {})).toEqual({ siteId: 'shop' });
  });

  it('a body names one letter, filters, or says all; never nothing', () => {
    expect(parse(deadBodySchema, { hitId: 7, destinationId: 'hook' })).toEqual({ siteId: 'shop', hitId: 7, destinationId: 'hook' });
    expect(parse(deadBodySchema, { all: true, limit: 10 })).toEqual({ siteId: 'shop', limit: 10 });
    for (const bad of [{}, { limit: 5 }, { all: false }, { all: true, destinationId: 'x' }, { hitId: 0 }, { hitId: 1.5 }, { limit: true, all: true }, { since: 'soon', all: true }, [], null, 'all']) {
      expect(() => parse(deadBodySchema, bad), JSON.stringify(bad)).toThrow(ValidationError);
    }
  });

  it('any input either fails as a ValidationError or yields a bounded filter', () => {
    const value = fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }));
    const key = fc.constantFrom('destinationId', 'reason', 'since', 'before', 'limit', 'hitId', 'all', 'other');
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 6 }), fc.boolean(), (input, body) => {
        let f;
        try {
          f = parse(body ? deadBodySchema : deadListSchema, input);
        } catch (e) {
          expect(e).toBeInstanceOf(ValidationError);
          return;
        }
        expect(f.siteId).toBe('shop');
        if (f.limit !== undefined) expect(Number.isInteger(f.limit) && f.limit >= 1 && f.limit <= (body ? MAX_DEAD_BATCH : MAX_DEAD_PAGE)).toBe(true);
        if (f.since !== undefined && f.before !== undefined) expect(f.since).toBeLessThan(f.before);
        if (f.destinationId !== undefined) expect(f.destinationId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
        if (f.reason !== undefined) expect(f.reason.length).toBeLessThanOrEqual(200);
      }),
      { numRuns: 500 },
    );
  });
});
