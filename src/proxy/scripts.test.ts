import { describe, expect, it } from 'vitest';
import { ConfigError, ValidationError } from '../errors.ts';
import { rebuildQuery, scriptProxyRouter } from './scripts.ts';

const RULES = { id: /^G-[A-Z0-9]{4,20}$/, l: /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/ };

describe('rebuildQuery', () => {
  it.each([
    ['/gtag/js?id=G-ABCD1234', '?id=G-ABCD1234'],
    ['/gtag/js?url=http://evil&id=G-ABCD1234', '?id=G-ABCD1234'],
    ['/gtag/js?l=dl&id=G-ABCD1234', '?id=G-ABCD1234&l=dl'], // rules' order, not the request's
    ['/gtag/js?id=G-ABCD1234#frag', '?id=G-ABCD1234'],
    ['/gtag/js?id=G-ABCD1234&ID=x&id%00=y', '?id=G-ABCD1234'],
  ])('%s → %s', (url, out) => {
    expect(rebuildQuery(url, RULES, ['id'])).toBe(out);
  });

  it('returns an empty string when no allowed key is present and none is required', () => {
    expect(rebuildQuery('/x?evil=1', RULES)).toBe('');
    expect(rebuildQuery('/x', RULES)).toBe('');
  });

  it.each(['/gtag/js', '/gtag/js?id=', '/gtag/js?id=G-AB', '/gtag/js?id=G-ABCD1234&id=G-ABCD1234', '/gtag/js?id=G-ABCD1234&l=a-b', '/gtag/js?id=G-ABCD1234%26url%3Dx'])(
    '%s → ValidationError',
    (url) => {
      expect(() => rebuildQuery(url, RULES, ['id'])).toThrow(ValidationError);
    },
  );
});

describe('scriptProxyRouter origins', () => {
  it('accepts the defaults and plain origins', () => {
    expect(() => scriptProxyRouter()).not.toThrow();
    expect(() => scriptProxyRouter({ origins: { google: 'http://127.0.0.1:1234', meta: 'https://connect.facebook.net/' } })).not.toThrow();
  });

  it.each(['ftp://x.test', 'https://u:p@x.test', 'https://x.test/path', 'https://x.test/?q=1', 'not a url'])('refuses %s', (origin) => {
    expect(() => scriptProxyRouter({ origins: { google: origin, meta: 'https://connect.facebook.net' } })).toThrow(ConfigError);
  });
});
