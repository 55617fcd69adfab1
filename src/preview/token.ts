import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { PreviewMode } from './types.ts';

/**
 * The preview token: `tp1.<id>.<expiresAtMs>.<mode>.<hmac>`, HMAC-SHA256 with a key derived from
 * `debug.adminKey` by HKDF-SHA256 with its own info string, so it is never the dashboard session's
 * key (a session token cannot pass as a preview token, nor the reverse) and changing the admin key
 * voids every preview. The signature only says Tagwarden issued it: a token is honoured while its
 * id is in this instance's registry (./registry.ts), so stopping a preview denies it at once.
 */
const VERSION = 'tp1';
const INFO = 'tagwarden preview token v1';
/** Longest token looked at (a real one is about 90 characters): anything longer is not parsed. */
export const MAX_TOKEN_CHARS = 200;
const ID = /^[A-Za-z0-9_-]{16,32}$/;
/** An HMAC-SHA256 in base64url without padding. */
const SIG = /^[A-Za-z0-9_-]{43}$/;

export interface TokenClaims {
  id: string;
  expiresAt: number;
  mode: PreviewMode;
}

export interface PreviewTokens {
  sign(claims: TokenClaims): string;
  /** The claims of a well-formed, correctly signed token (expiry not checked here), else undefined. Never throws. */
  verify(token: unknown): TokenClaims | undefined;
}

export function previewTokens(adminKey: string): PreviewTokens {
  const key = Buffer.from(hkdfSync('sha256', adminKey, Buffer.alloc(0), INFO, 32));
  const mac = (text: string): Buffer => createHmac('sha256', key).update(text).digest();
  return {
    sign(c) {
      const head = `${VERSION}.${c.id}.${c.expiresAt}.${c.mode}`;
      return `${head}.${mac(head).toString('base64url')}`;
    },
    verify(token) {
      if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return undefined;
      const parts = token.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION) return undefined;
      const [, id, exp, mode, sig] = parts as [string, string, string, string, string];
      // Every part spelled strictly (base64url decoding skips stray characters): a token that verifies is
      // safe to echo in a Set-Cookie header.
      if (!ID.test(id) || !/^\d{1,15}$/.test(exp) || (mode !== 'test' && mode !== 'silent') || !SIG.test(sig)) return undefined;
      const given = Buffer.from(sig, 'base64url');
      const want = mac(`${VERSION}.${id}.${exp}.${mode}`);
      if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
      return { id, expiresAt: Number(exp), mode };
    },
  };
}
