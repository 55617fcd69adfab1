import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRowErrors } from './row-errors.ts';
import { RowErrorsSchema } from './template-schema.ts';

/** templates/google-ads/template.json's rowErrors. */
const google = compileRowErrors({
  errors: 'partialFailureError.details.*.errors.*',
  index: 'location.fieldPathElements.0.index',
  code: 'errorCode.*',
  transient: ['TOO_RECENT_EVENT', 'TOO_RECENT_CONVERSION_ACTION'],
});

const error = (index: unknown, code: unknown = 'UNPARSEABLE_GCLID') => ({ errorCode: { conversionUploadError: code }, message: 'm', location: { fieldPathElements: [{ fieldName: 'conversions', index }] } });
const answer = (...errors: unknown[]) => JSON.stringify({ partialFailureError: { code: 3, message: 'x', details: [{ '@type': 'GoogleAdsFailure', errors }] }, results: [] });

describe('rowErrors reader (Google Ads partial failure)', () => {
  it.each([
    ['no partialFailureError: every row taken', JSON.stringify({ results: [{}, {}] }), 2, undefined],
    ['an empty object', '{}', 2, undefined],
    ['an empty errors list', answer(), 2, undefined],
    ['one final row', answer(error(1)), 2, { kind: 'rows', failures: [{ index: 1, code: 'UNPARSEABLE_GCLID', transient: false }] }],
    ['one transient row', answer(error(0, 'TOO_RECENT_EVENT')), 2, { kind: 'rows', failures: [{ index: 0, code: 'TOO_RECENT_EVENT', transient: true }] }],
    ['sorted, one entry per row; final beats transient on the same row', answer(error(1, 'TOO_RECENT_EVENT'), error(0), error(1, 'EXPIRED_EVENT')), 3, { kind: 'rows', failures: [{ index: 0, code: 'UNPARSEABLE_GCLID', transient: false }, { index: 1, code: 'EXPIRED_EVENT', transient: false }] }],
    ['a code that is free text is UNKNOWN', answer(error(0, 'click not found for jane@example.com')), 1, { kind: 'rows', failures: [{ index: 0, code: 'UNKNOWN', transient: false }] }],
    ['a missing code is UNKNOWN', answer({ location: { fieldPathElements: [{ index: 0 }] } }), 1, { kind: 'rows', failures: [{ index: 0, code: 'UNKNOWN', transient: false }] }],
    ['an index outside the batch', answer(error(2)), 2, { kind: 'unreadable' }],
    ['a negative index', answer(error(-1)), 2, { kind: 'unreadable' }],
    ['a fractional index', answer(error(0.5)), 2, { kind: 'unreadable' }],
    ['an index as a string', answer(error('0')), 2, { kind: 'unreadable' }],
    ['no index', answer({ errorCode: { conversionUploadError: 'X' } }), 2, { kind: 'unreadable' }],
    ['not JSON', '<html>', 2, { kind: 'unreadable' }],
    ['a JSON array', '[]', 2, { kind: 'unreadable' }],
    ['empty body', '', 2, { kind: 'unreadable' }],
  ])('%s', (_name, body, size, expected) => {
    expect(google.read(body, false, size)).toEqual(expected);
  });

  it('a body cut at the read limit is unreadable, whatever it says', () => {
    expect(google.read('{}', true, 1)).toEqual({ kind: 'unreadable' });
  });

  it('reads only own properties: a __proto__ key in the answer is data, not a path', () => {
    const body = '{"partialFailureError":{"details":[{"errors":[{"__proto__":{"x":1},"errorCode":{"a":"X_Y"},"location":{"fieldPathElements":[{"index":0}]}}]}]}}';
    expect(google.read(body, false, 1)).toEqual({ kind: 'rows', failures: [{ index: 0, code: 'X_Y', transient: false }] });
  });

  it('paths: `*` and numeric segments allowed, prototype keys and empty segments refused (the template schema)', () => {
    const paths = (errors: string) => RowErrorsSchema.safeParse({ errors, index: 'i', code: 'c' });
    expect(paths('a.*.b.0').success).toBe(true);
    expect(paths('a..b').success).toBe(false);
    expect(paths('a.__proto__').success).toBe(false);
    expect(paths('').success).toBe(false);
  });

  it('never throws, and a verdict only names rows of the batch (property)', () => {
    const json = fc.jsonValue({ maxDepth: 6 });
    const shaped = fc.array(fc.record({ errorCode: fc.oneof(json, fc.record({ e: fc.string() })), location: fc.oneof(json, fc.record({ fieldPathElements: fc.array(fc.record({ index: fc.oneof(fc.integer({ min: -3, max: 12 }), json) }), { maxLength: 3 }) })) }), { maxLength: 8 });
    fc.assert(
      fc.property(fc.oneof(json.map((v) => JSON.stringify(v)), shaped.map((errors) => answer(...errors)), fc.string()), fc.integer({ min: 0, max: 10 }), fc.boolean(), (body, size, truncated) => {
        const verdict = google.read(body, truncated, size);
        if (verdict?.kind === 'rows') {
          for (const f of verdict.failures) {
            expect(f.index).toBeGreaterThanOrEqual(0);
            expect(f.index).toBeLessThan(size);
            expect(f.code).toMatch(/^[A-Z][A-Z0-9_]{0,63}$/);
          }
          expect(new Set(verdict.failures.map((f) => f.index)).size).toBe(verdict.failures.length);
        }
      }),
      { seed: 20261202, numRuns: 500 },
    );
  });
});
