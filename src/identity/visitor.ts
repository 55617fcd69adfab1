import type { IncomingHttpHeaders } from 'node:http';
import { getDotted } from '../lib/dotted.ts';
import { readCookie } from '../http/cookies.ts';

/**
 * Who the visitor is, for consent resolution: an ordered list of places to read the visitor id
 * from (the CMP's visitor-id cookie, a query parameter, a field of the hit's payload, a header),
 * the first valid one winning. Ids are untrusted: bounded in length and charset, and an invalid one
 * is skipped (the next source is tried), never an error for the hit. See DESIGN.md, "Identity".
 */
export type IdSource = { cookie: string } | { query: string } | { body: string } | { header: string };

/** Characters a visitor or user id may hold: URL-safe text, base64 and the dots of GA's client ids. */
export const ID_PATTERN = /^[A-Za-z0-9._~:@+=/-]+$/;
export const DEFAULT_MAX_ID_LENGTH = 128;

/** The parts of a hit an id can be read from. */
export interface HitSources {
  headers: IncomingHttpHeaders;
  /** Query parameters of the hit's URL. */
  query: URLSearchParams;
  /** The hit's payload: a Segment event as sent, or a GA4 hit's parameters. */
  body: unknown;
  /** The answer being prepared: the accept step (src/pipeline/accept.ts) sets the visitor cookie identity/cookie.ts computes on it. */
  response?: { getHeader(name: string): unknown; setHeader(name: string, value: string | string[]): unknown; readonly headersSent: boolean };
}

export interface VisitorId {
  id: string;
  /** Where it was read, e.g. `cookie:cb_vid`, `body:anonymousId`. */
  source: string;
}

/** The id if `value` is an acceptable id, else undefined. Numbers are read as their decimal text. */
export function validId(value: unknown, maxLength = DEFAULT_MAX_ID_LENGTH): string | undefined {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || text.length === 0 || text.length > maxLength) return undefined;
  return ID_PATTERN.test(text) ? text : undefined;
}

/** Parsed once from config: body paths split into segments. */
export interface CompiledSource {
  kind: 'cookie' | 'query' | 'body' | 'header';
  name: string;
  segments: readonly string[];
  label: string;
}

export function compileSources(sources: readonly IdSource[]): CompiledSource[] {
  return sources.map((s): CompiledSource => {
    if ('cookie' in s) return { kind: 'cookie', name: s.cookie, segments: [], label: `cookie:${s.cookie}` };
    if ('query' in s) return { kind: 'query', name: s.query, segments: [], label: `query:${s.query}` };
    if ('header' in s) return { kind: 'header', name: s.header.toLowerCase(), segments: [], label: `header:${s.header.toLowerCase()}` };
    return { kind: 'body', name: s.body, segments: s.body.split('.'), label: `body:${s.body}` };
  });
}

/** The first valid visitor id in source order, or undefined when none of them holds one. */
export function visitorIdFrom(sources: readonly CompiledSource[], hit: HitSources, maxLength = DEFAULT_MAX_ID_LENGTH): VisitorId | undefined {
  for (const s of sources) {
    let raw: unknown;
    switch (s.kind) {
      case 'cookie':
        raw = readCookie(hit.headers.cookie, s.name);
        break;
      case 'query':
        raw = hit.query.get(s.name) ?? undefined;
        break;
      case 'header': {
        const h = hit.headers[s.name];
        // A repeated header is ambiguous: which copy would the site have meant? Skip it.
        raw = Array.isArray(h) ? undefined : h;
        break;
      }
      case 'body':
        raw = getDotted(hit.body, s.segments);
        break;
    }
    const id = validId(raw, maxLength);
    if (id !== undefined) return { id, source: s.label };
  }
  return undefined;
}
