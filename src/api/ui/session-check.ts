import type { Request } from 'express';
import { ForbiddenError, type TagwardenError } from '../../errors.ts';
import { readCookie } from '../../http/cookies.ts';
import { SESSION_COOKIE, type Session, type UiSessions } from './session.ts';

/**
 * What a request's dashboard session says: nothing (no cookie, or one that is not a valid
 * session: the caller answers as without credentials), an error (a valid session without its
 * CSRF token, or an unsafe request from another origin: 403), or the session. Used by the API key
 * guard (src/api/auth.ts: a session counts as an admin key) and by the dashboard's own routes.
 */
export type SessionAuth = (req: Request) => { session: Session } | { error: TagwardenError } | undefined;

export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function sessionAuth(sessions: UiSessions): SessionAuth {
  return (req) => {
    const session = sessions.verify(sessionToken(req));
    if (session === undefined) return undefined;
    // Reading too (GET included): SameSite=Strict keeps the cookie off cross-site requests in
    // today's browsers, the token also covers a same-site attacker page and older browsers.
    if (!sessions.csrfMatches(session, req.headers[CSRF_HEADER])) {
      return { error: new ForbiddenError('a dashboard session must send its X-CSRF-Token header (from GET /ui/api/session)', { details: { reason: 'csrf' } }) };
    }
    const origin = crossOriginProblem(req);
    return origin === undefined ? { session } : { error: origin };
  };
}

/** The session cookie's value, if any. */
export function sessionToken(req: Request): string | undefined {
  return readCookie(req.headers.cookie, SESSION_COOKIE);
}

/**
 * 403 for a state-changing request (not GET, HEAD, OPTIONS) from another origin; undefined
 * otherwise. A browser that sends `Sec-Fetch-Site` is believed: only `same-origin` (and `none`,
 * a request the user made) pass. Without it, an `Origin` that is not this host is refused; it is
 * the fallback because a browser may send `Origin: null` on a same-origin form post (under a
 * no-referrer policy). A request without either header (curl, an old browser) passes: the CSRF
 * token or the key is what authenticates it. The host is Express's `req.host`: the Host header,
 * or X-Forwarded-Host behind trusted proxies.
 */
export function crossOriginProblem(req: Request): ForbiddenError | undefined {
  if (SAFE_METHODS.has(req.method)) return undefined;
  const refuse = (): ForbiddenError => new ForbiddenError('a cross-origin request cannot change anything here', { details: { reason: 'origin' } });
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none' ? undefined : refuse();
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  return sameHost(origin, req.host) ? undefined : refuse();
}

function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    // `null` (a sandboxed frame, a redirect across origins) or garbage: not this origin.
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const want = host.toLowerCase();
  const defaultPort = url.protocol === 'https:' ? '443' : '80';
  return url.host === want || `${url.hostname}:${url.port === '' ? defaultPort : url.port}` === want;
}
