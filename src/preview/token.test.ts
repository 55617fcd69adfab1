import { describe, expect, it } from 'vitest';
import { MAX_TOKEN_CHARS, previewTokens } from './token.ts';

describe('preview tokens', () => {
  const tokens = previewTokens('admin-key-0123456789abcdef');
  const claims = { id: 'AbCdEfGhIjKlMnOpQrStUv', expiresAt: 1_800_000_000_000, mode: 'test' as const };

  it('verifies what it signed, with its claims, in bounded length', () => {
    const t = tokens.sign(claims);
    expect(t.length).toBeLessThan(MAX_TOKEN_CHARS);
    expect(tokens.verify(t)).toEqual(claims);
  });

  it('refuses a changed claim, another key, a stray character, and anything not a token', () => {
    const t = tokens.sign(claims);
    expect(tokens.verify(t.replace('.test.', '.silent.'))).toBeUndefined();
    expect(tokens.verify(t.replace('1800000000000', '1900000000000'))).toBeUndefined();
    expect(previewTokens('another-admin-key-0123456789').verify(t)).toBeUndefined();
    // base64url decoding skips stray characters: the signature is spelled strictly (the token goes into a Set-Cookie).
    expect(tokens.verify(`${t.slice(0, 60)};${t.slice(60)}`)).toBeUndefined();
    expect(tokens.verify(`${t}; Domain=evil.example`)).toBeUndefined();
    for (const v of [undefined, 42, '', 'tp1....', 'x'.repeat(10_000), `tp2${t.slice(3)}`]) expect(tokens.verify(v)).toBeUndefined();
  });
});
