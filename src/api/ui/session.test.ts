import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../lib/fake-clock.ts';
import { createUiSessions, sessionCookie } from './session.ts';

const KEY = 'admin-key-0123456789abcdef';

describe('dashboard session tokens', () => {
  it('a token verifies on any instance with the same admin key, not with another key', () => {
    const clock = new FakeClock(1_000_000);
    const a = createUiSessions({ adminKey: KEY, ttlSeconds: 60, clock });
    const b = createUiSessions({ adminKey: KEY, ttlSeconds: 60, clock });
    const other = createUiSessions({ adminKey: `${KEY}-new`, ttlSeconds: 60, clock });
    const s = a.issue();
    expect(s.token).toMatch(/^v1\.1060000\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(b.verify(s.token)).toEqual({ nonce: s.nonce, expiresAt: 1_060_000, csrf: s.csrf });
    expect(other.verify(s.token)).toBeUndefined();
    // The admin key is not the MAC key, and the CSRF token is not the MAC.
    expect(s.token).not.toContain(KEY);
    expect(s.token.endsWith(s.csrf)).toBe(false);
  });

  it('refuses tampered, malformed, expired and logged-out tokens', () => {
    const clock = new FakeClock(1_000_000);
    const sessions = createUiSessions({ adminKey: KEY, ttlSeconds: 60, clock });
    const s = sessions.issue();
    const [v, exp, nonce, mac] = s.token.split('.') as [string, string, string, string];
    for (const bad of [
      undefined,
      '',
      `${v}.${Number(exp) + 1}.${nonce}.${mac}`,
      `${v}.${exp}.${nonce.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}.${mac}`,
      `v2.${exp}.${nonce}.${mac}`,
      `${s.token}.x`,
      `${v}.${exp}.${nonce}`,
      `${v}.-1.${nonce}.${mac}`,
      'x'.repeat(10_000),
      // As long as the MAC in characters but not in bytes: refused, not a thrown RangeError (a 500).
      `${v}.${exp}.${nonce}.${'é'.repeat(mac.length)}`,
    ]) {
      expect(sessions.verify(bad), String(bad).slice(0, 40)).toBeUndefined();
    }
    expect(sessions.verify(s.token)).toBeDefined();
    const other = sessions.issue();
    sessions.revoke(sessions.verify(s.token)!);
    expect(sessions.verify(s.token)).toBeUndefined();
    expect(sessions.verify(other.token)).toBeDefined();
    clock.advance(60_000);
    expect(sessions.verify(other.token)).toBeUndefined();
  });

  it('the CSRF token is bound to its session', () => {
    const sessions = createUiSessions({ adminKey: KEY, ttlSeconds: 60, clock: new FakeClock(0) });
    const a = sessions.issue();
    const b = sessions.issue();
    expect(sessions.csrfMatches(a, a.csrf)).toBe(true);
    expect(sessions.csrfMatches(a, b.csrf)).toBe(false);
    expect(sessions.csrfMatches(a, undefined)).toBe(false);
    expect(sessions.csrfMatches(a, [a.csrf])).toBe(false);
    expect(sessions.csrfMatches(a, `${a.csrf}x`)).toBe(false);
    expect(sessions.csrfMatches(a, 'é'.repeat(a.csrf.length))).toBe(false);
  });

  it('the cookie: HttpOnly, SameSite=Strict, Path=/, Secure when asked', () => {
    expect(sessionCookie('t', 60, false)).toBe('tw_ui=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60');
    expect(sessionCookie('', 0, true)).toBe('tw_ui=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure');
  });
});
