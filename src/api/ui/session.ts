import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Clock } from '../../lib/clock.ts';
import { sameText } from '../../lib/same-text.ts';

/**
 * Dashboard sessions (docs/ui.md): stateless signed tokens, so any instance holding the same
 * `debug.adminKey` accepts them, and a new admin key logs everybody out. A token is
 * `v1.<expiresAtMs>.<nonce>.<mac>`, the MAC an HMAC-SHA256 under a key derived from the admin key
 * (HKDF-SHA256, so the admin key itself never signs anything a browser holds). The CSRF token of
 * a session is another HMAC of its nonce: the page reads it from GET /ui/api/session and sends it as
 * `X-CSRF-Token`, which a cross-site request cannot know. A logout denies the nonce in this
 * instance's memory until the token expires (another instance still accepts it until then).
 */
export interface Session {
  nonce: string;
  expiresAt: number;
  csrf: string;
}

export interface UiSessions {
  readonly ttlSeconds: number;
  /** A new session and its cookie token. */
  issue(): Session & { token: string };
  /** The session a token names, when its MAC is right, it has not expired and was not logged out here. */
  verify(token: string | undefined): Session | undefined;
  /** Whether `given` is the session's CSRF token (constant time). */
  csrfMatches(session: Session, given: unknown): boolean;
  /** Logs the session out: its nonce is refused until it would have expired. */
  revoke(session: Session): void;
}

export const SESSION_COOKIE = 'tw_ui';
const VERSION = 'v1';
/** The longest token issue() makes is about 80 characters; a cookie value longer than this is not looked at. */
const MAX_TOKEN_LENGTH = 200;
const NONCE = /^[A-Za-z0-9_-]{22}$/;
const EXPIRY = /^[0-9]{1,15}$/;
/** Logged-out nonces kept; beyond it the oldest is forgotten (a logout is an admin's act, so this bounds memory, not an attack). */
const MAX_REVOKED = 10_000;

export function createUiSessions(o: { adminKey: string; ttlSeconds: number; clock: Clock }): UiSessions {
  const key = Buffer.from(hkdfSync('sha256', o.adminKey, 'tagwarden', 'ui session v1', 32));
  const mac = (text: string): string => createHmac('sha256', key).update(text).digest('base64url');
  const csrfOf = (nonce: string): string => mac(`csrf|${nonce}`);
  const revoked = new Map<string, number>();

  return {
    ttlSeconds: o.ttlSeconds,
    issue() {
      const expiresAt = o.clock.now() + o.ttlSeconds * 1000;
      const nonce = randomBytes(16).toString('base64url');
      const body = `${VERSION}.${expiresAt}.${nonce}`;
      return { token: `${body}.${mac(body)}`, nonce, expiresAt, csrf: csrfOf(nonce) };
    },
    verify(token) {
      if (token === undefined || token.length > MAX_TOKEN_LENGTH) return undefined;
      const parts = token.split('.');
      if (parts.length !== 4) return undefined;
      const [version, expiry, nonce, given] = parts as [string, string, string, string];
      if (version !== VERSION || !EXPIRY.test(expiry) || !NONCE.test(nonce)) return undefined;
      if (!sameText(given, mac(`${version}.${expiry}.${nonce}`))) return undefined;
      const expiresAt = Number(expiry);
      if (expiresAt <= o.clock.now() || revoked.has(nonce)) return undefined;
      return { nonce, expiresAt, csrf: csrfOf(nonce) };
    },
    csrfMatches(session, given) {
      return typeof given === 'string' && sameText(given, session.csrf);
    },
    revoke(session) {
      const now = o.clock.now();
      for (const [nonce, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(nonce);
      revoked.set(session.nonce, session.expiresAt);
      if (revoked.size > MAX_REVOKED) revoked.delete(revoked.keys().next().value!);
    },
  };
}

/** The Set-Cookie value of a session (`maxAgeSeconds` 0 clears it). */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
