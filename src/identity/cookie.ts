import { randomUUID } from 'node:crypto';
import type { ConsentState } from '../consent/state.ts';
import { readCookie } from '../http/cookies.ts';
import type { VisitorId } from './visitor.ts';
import { validId } from './visitor.ts';

/**
 * Tagwarden's own first-party visitor id cookie, set on a hit's answer only when the consent the
 * hit itself carries grants the configured category (storage needs consent: ePrivacy art. 5(3)).
 * `Secure`, `SameSite=Lax`, `HttpOnly` (only Tagwarden reads it), with the configured name, domain
 * and lifetime. The id is the hit's visitor id when it has one, else a new random one; reading it
 * back is an identity source like any other (`identity.visitorId: [{cookie: <name>}, …]`).
 * Identity only computes the cookie; the pipeline's accept step writes it on the answer.
 */
export interface VisitorCookieOptions {
  name: string;
  domain?: string | undefined;
  maxAgeDays: number;
  /** The site category whose grant allows the cookie (e.g. functional or analytics). */
  category: string;
}

export interface VisitorCookie {
  name: string;
  /** The visitor id it holds. */
  value: string;
  /** The whole `Set-Cookie` header value, attributes included. */
  header: string;
}

export function visitorCookieHeader(o: VisitorCookieOptions, id: string): string {
  const parts = [`${o.name}=${id}`, 'Path=/', `Max-Age=${Math.floor(o.maxAgeDays * 86_400)}`, 'Secure', 'HttpOnly', 'SameSite=Lax'];
  if (o.domain !== undefined) parts.push(`Domain=${o.domain}`);
  return parts.join('; ');
}

/**
 * The cookie to set (or refresh) on the hit's answer, or undefined when its consent does not
 * allow it. `cookieHeader` is the hit's `Cookie` request header: an id set before is kept.
 */
export function visitorCookie(o: VisitorCookieOptions, cookieHeader: string | undefined, visitor: VisitorId | undefined, consent: ConsentState, maxIdLength: number): VisitorCookie | undefined {
  if (consent.categories[o.category]?.status !== 'granted') return undefined;
  const existing = validId(readCookie(cookieHeader, o.name), maxIdLength);
  const value = existing ?? visitor?.id ?? randomUUID();
  return { name: o.name, value, header: visitorCookieHeader(o, value) };
}
