import { randomUUID } from 'node:crypto';
import type { ConsentState } from '../consent/state.ts';
import { readCookie } from '../http/cookies.ts';
import type { HitSources, VisitorId } from './visitor.ts';
import { validId } from './visitor.ts';

/**
 * Tagwarden's own first-party visitor id cookie, set on a hit's answer only when the consent the
 * hit itself carries grants the configured category (storage needs consent: ePrivacy art. 5(3)).
 * `Secure`, `SameSite=Lax`, `HttpOnly` (only Tagwarden reads it), with the configured name, domain
 * and lifetime. The id is the hit's visitor id when it has one, else a new random one; reading it
 * back is an identity source like any other (`identity.visitorId: [{cookie: <name>}, …]`).
 */
export interface VisitorCookieOptions {
  name: string;
  domain?: string | undefined;
  maxAgeDays: number;
  /** The site category whose grant allows the cookie (e.g. functional or analytics). */
  category: string;
}

export function visitorCookieHeader(o: VisitorCookieOptions, id: string): string {
  const parts = [`${o.name}=${id}`, 'Path=/', `Max-Age=${Math.floor(o.maxAgeDays * 86_400)}`, 'Secure', 'HttpOnly', 'SameSite=Lax'];
  if (o.domain !== undefined) parts.push(`Domain=${o.domain}`);
  return parts.join('; ');
}

/** Sets (or refreshes) the cookie on the hit's answer when its consent allows; returns the id set. */
export function maybeSetVisitorCookie(o: VisitorCookieOptions, hit: HitSources, visitor: VisitorId | undefined, consent: ConsentState, maxIdLength: number): string | undefined {
  const res = hit.response;
  if (res === undefined || res.headersSent) return undefined;
  if (consent.categories[o.category]?.status !== 'granted') return undefined;
  const existing = validId(readCookie(hit.headers.cookie, o.name), maxIdLength);
  const id = existing ?? visitor?.id ?? randomUUID();
  const header = visitorCookieHeader(o, id);
  const current = res.getHeader('set-cookie');
  // One Set-Cookie per answer, however many hits a batch carried.
  const list = Array.isArray(current) ? current.map(String) : typeof current === 'string' ? [current] : [];
  if (list.some((c) => c.startsWith(`${o.name}=`))) return undefined;
  res.setHeader('set-cookie', [...list, header]);
  return id;
}
