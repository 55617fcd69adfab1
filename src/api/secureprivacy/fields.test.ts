import { describe, expect, it } from 'vitest';
import { bool, clientId, consentGiven, dateTime, field, int, text } from './fields.ts';

describe('SecurePrivacy request fields', () => {
  it('matches names exactly first, then ignoring case', () => {
    expect(field({ ConsentGiven: 'All', consentgiven: 'None' }, 'ConsentGiven')).toBe('All');
    expect(field({ consentGiven: 'None' }, 'ConsentGiven')).toBe('None');
    expect(field(JSON.parse('{"__proto__": "x"}') as Record<string, unknown>, 'constructor')).toBeUndefined();
  });

  it('bounds text in characters, refuses control characters, and names the field', () => {
    expect(text({ Metadata: '€'.repeat(200) }, 'Metadata', 200)).toHaveLength(200);
    expect(text({ Metadata: '😀'.repeat(200) }, 'Metadata', 200)).toBe('😀'.repeat(200));
    expect(() => text({ Metadata: 'x'.repeat(201) }, 'Metadata', 200)).toThrow(/^Metadata: at most 200 characters/);
    expect(() => text({ Reference: 'a\u0000b' }, 'Reference', 512)).toThrow(/^Reference: control characters/);
    expect(() => text({ Reference: 7 }, 'Reference', 512)).toThrow(/^Reference: a string expected/);
    expect(() => text({}, 'Reference', 512, true)).toThrow(/^Reference: required/);
    expect(text({ URI: '' }, 'URI', 10)).toBeUndefined();
  });

  it("ConsentGiven is one of 'All', 'Partial', 'None' (any case)", () => {
    expect(consentGiven({ ConsentGiven: 'partial' })).toBe('Partial');
    expect(() => consentGiven({ ConsentGiven: 'Yes' })).toThrow(/^ConsentGiven: /);
    expect(() => consentGiven({ ConsentGiven: true })).toThrow(/^ConsentGiven: /);
    expect(() => consentGiven({}, true)).toThrow(/^ConsentGiven: required/);
  });

  it('DateTime filters: ISO 8601, a date-time without a zone read as UTC', () => {
    expect(dateTime({ FromDate: '2026-01-31T10:00:00' }, 'FromDate')).toBe(Date.UTC(2026, 0, 31, 10));
    expect(dateTime({ FromDate: '2026-01-31T10:00:00+02:00' }, 'FromDate')).toBe(Date.UTC(2026, 0, 31, 8));
    expect(dateTime({ FromDate: '2026-01-31' }, 'FromDate')).toBe(Date.UTC(2026, 0, 31));
    expect(() => dateTime({ FromDate: '31/01/2026' }, 'FromDate')).toThrow(/^FromDate: /);
    expect(() => dateTime({ FromDate: '2026-02-31T00:00:00Z' }, 'FromDate')).toThrow(/^FromDate: not a valid date/);
    expect(dateTime({ FromDate: '2024-02-29T00:00:00Z' }, 'FromDate')).toBe(Date.UTC(2024, 1, 29));
    expect(() => dateTime({ FromDate: '2026-13-01' }, 'FromDate')).toThrow(/^FromDate: /);
  });

  it('booleans, page sizes and ClientIds', () => {
    expect(bool({ ConsentGiven: 'false' }, 'ConsentGiven')).toBe(false);
    expect(bool({ ConsentGiven: true }, 'ConsentGiven')).toBe(true);
    expect(() => bool({ ConsentGiven: 'yes' }, 'ConsentGiven')).toThrow(/^ConsentGiven: true or false/);
    expect(int({ PageSize: '50' }, 'PageSize', 1000)).toBe(50);
    expect(() => int({ PageSize: '0' }, 'PageSize', 1000)).toThrow(/^PageSize: /);
    expect(() => int({ PageSize: 1001 }, 'PageSize', 1000)).toThrow(/^PageSize: /);
    expect(clientId({ ClientId: 'DDB8AC7C9A500C6C2028E03ABE525C0ECEF2F6134DB78BD1229131ECD9D8F4DB' })).toHaveLength(64);
    expect(() => clientId({ ClientId: 'a b' })).toThrow(/^ClientId: /);
    expect(() => clientId({})).toThrow(/^ClientId: required/);
  });
});
