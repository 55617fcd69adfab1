import type { VisitorCookie } from '../identity/cookie.ts';
import type { HitSources } from '../identity/visitor.ts';

/**
 * Adds the cookie to the answer being prepared, once: a batch carries many hits and answers once,
 * so a second hit of the same request does not add a second `Set-Cookie` for the same name. An
 * answer whose headers are already sent is left alone.
 */
export function setCookieOnce(res: NonNullable<HitSources['response']>, cookie: VisitorCookie): boolean {
  if (res.headersSent) return false;
  const current = res.getHeader('set-cookie');
  const list = Array.isArray(current) ? current.map(String) : typeof current === 'string' ? [current] : [];
  if (list.some((c) => c.startsWith(`${cookie.name}=`))) return false;
  res.setHeader('set-cookie', [...list, cookie.header]);
  return true;
}
