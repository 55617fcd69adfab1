import { describe, expect, it } from 'vitest';
import { interpretVerifyBody, mapCategories } from './verify-response.ts';

const MAP = { marketing: 'advertising', ads: 'advertising', analytics: 'analytics', functional: 'functional' };
const read = (body: unknown) => interpretVerifyBody(typeof body === 'string' ? body : JSON.stringify(body), MAP, 42);

describe('interpretVerifyBody', () => {
  it('maps the documented consent answer (seed "Response")', () => {
    expect(
      read({
        hasConsent: true,
        categories: { necessary: true, analytics: true, marketing: false, functional: true },
        consentedAt: '2026-03-08T12:00:00Z',
        geoCountry: 'DE',
      }),
    ).toEqual({
      found: true,
      // `necessary` is not in the map: ignored.
      categories: { analytics: 'granted', advertising: 'denied', functional: 'granted' },
      consentedAt: '2026-03-08T12:00:00Z',
      geoCountry: 'DE',
      fetchedAt: 42,
    });
  });

  it('reads the documented "no consent found" shape as found: false with no categories', () => {
    expect(read({ hasConsent: false, categories: null, consentedAt: null, geoCountry: null })).toEqual({ found: false, categories: {}, fetchedAt: 42 });
  });

  it('absent optional fields read as null', () => {
    expect(read({ hasConsent: false })).toEqual({ found: false, categories: {}, fetchedAt: 42 });
  });

  it('ignores unknown extra fields', () => {
    expect(read({ hasConsent: true, categories: { analytics: true }, consentedAt: null, geoCountry: null, plan: 'pro' })).toMatchObject({
      categories: { analytics: 'granted' },
    });
  });

  it('answers are frozen (shared by every waiter and the cache)', () => {
    const a = read({ hasConsent: true, categories: { analytics: true } })!;
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.categories)).toBe(true);
  });

  it.each<[string, unknown, Record<string, string>]>([
    ['only true is granted', { analytics: true, functional: false }, { analytics: 'granted', functional: 'denied' }],
    ['"true" (a string) is denied', { analytics: 'true' }, { analytics: 'denied' }],
    ['1 is denied', { analytics: 1 }, { analytics: 'denied' }],
    ['null is denied', { analytics: null }, { analytics: 'denied' }],
    ['an object is denied', { analytics: { granted: true } }, { analytics: 'denied' }],
    ['names agreeing on true: granted', { marketing: true, ads: true }, { advertising: 'granted' }],
    ['names disagreeing: denied', { marketing: true, ads: false }, { advertising: 'denied' }],
    ['names disagreeing, other order: denied', { ads: false, marketing: true }, { advertising: 'denied' }],
    ['a name with an invalid value among them: denied', { marketing: true, ads: 'yes' }, { advertising: 'denied' }],
    ['unmapped names are ignored', { sale: true, toString: true, constructor: true }, {}],
    ['"__proto__" from JSON is just an unmapped name', JSON.parse('{"__proto__": true, "analytics": true}'), { analytics: 'granted' }],
    ['an empty object grants nothing', {}, {}],
  ])('categories: %s', (_name, categories, expected) => {
    const a = interpretVerifyBody(JSON.stringify({ hasConsent: true, categories }), MAP, 1);
    expect(a?.categories).toEqual(expected);
  });

  it('hasConsent: false with a category object denies every mapped category present', () => {
    expect(read({ hasConsent: false, categories: { analytics: true, marketing: false, other: true } })).toEqual({
      found: true,
      categories: { analytics: 'denied', advertising: 'denied' },
      fetchedAt: 42,
    });
  });

  it.each<[string, unknown]>([
    ['not JSON', 'hasConsent=true'],
    ['truncated JSON', '{"hasConsent": true, "categories": {"analytics": tr'],
    ['empty body', ''],
    ['a JSON array', [{ hasConsent: true }]],
    ['a JSON string', 'true'],
    ['null', 'null'],
    ['hasConsent missing', { categories: { analytics: true } }],
    ['hasConsent a string', { hasConsent: 'true', categories: { analytics: true } }],
    ['hasConsent 1', { hasConsent: 1, categories: { analytics: true } }],
    ['categories an array', { hasConsent: true, categories: [true] }],
    ['categories a string', { hasConsent: true, categories: 'analytics' }],
    ['hasConsent true but categories null', { hasConsent: true, categories: null }],
    ['hasConsent true but categories missing', { hasConsent: true }],
    ['consentedAt not a date', { hasConsent: true, categories: {}, consentedAt: 'yesterday' }],
    ['consentedAt a number', { hasConsent: true, categories: {}, consentedAt: 1741435200 }],
    ['consentedAt too long', { hasConsent: true, categories: {}, consentedAt: `2026-03-08T12:00:00Z${' '.repeat(60)}` }],
    ['geoCountry a number', { hasConsent: true, categories: {}, geoCountry: 49 }],
    ['geoCountry too long', { hasConsent: true, categories: {}, geoCountry: 'D'.repeat(65) }],
  ])('malformed: %s', (_name, body) => {
    expect(read(body)).toBeUndefined();
  });
});

describe('mapCategories', () => {
  it('site categories named like Object.prototype members are plain keys', () => {
    const out = mapCategories({ a: true, b: true }, { a: 'constructor', b: 'hasOwnProperty' }, true);
    expect(Object.keys(out).sort()).toEqual(['constructor', 'hasOwnProperty']);
    expect(out.constructor).toBe('granted');
  });
});
