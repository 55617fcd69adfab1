/**
 * The guard that keeps Tagwarden from ever acting as an open proxy, mounted before every route:
 *
 * - the request-target must be in origin form (`/path?query`): an absolute URL
 *   (`GET http://other/ HTTP/1.1`, proxy form), a scheme-relative `//host/...`, a `\` that some
 *   parsers read as `/`, or userinfo (`@`) in the first segment is refused with 400;
 * - the path must not traverse: `..`/`.` segments, encoded slashes or backslashes (`%2f`, `%5c`),
 *   encoded dots (`%2e%2e`) and double encoding (`%252e`) are refused with 400 (checked on the raw
 *   path and after decoding it once);
 * - when `allowedHosts` is non-empty, a Host header (lowercased, port and trailing dot stripped)
 *   not in the list is answered 421 Misdirected Request.
 *
 * Only the path is judged: query strings are validated key by key by the routes that read them.
 */
import type { RequestHandler } from 'express';
import { MisdirectedRequestError, toErrorBody, ValidationError } from '../errors.ts';

export type RequestTargetClass = 'ok' | 'absolute' | 'authority' | 'traversal';

/** Classifies a raw request-target (`req.url` as Node received it). Pure. */
export function classifyRequestTarget(rawUrl: string): RequestTargetClass {
  // Origin form only; anything else (`http://…`, `evil.com/x`, `*`, `\\host`) is a proxy request.
  if (!rawUrl.startsWith('/')) return 'absolute';
  const q = rawUrl.search(/[?#]/);
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  // `//host/…` and `/\host/…` are scheme-relative URLs to the WHATWG parser.
  if (path.startsWith('//') || path.startsWith('/\\')) return 'authority';
  const firstSegment = path.slice(1).split('/')[0] ?? '';
  if (firstSegment.includes('@') || /%40/i.test(firstSegment)) return 'authority';
  if (path.includes('\\') || /%(2f|5c)/i.test(path)) return 'traversal';
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return 'traversal'; // malformed percent-encoding: no parser agrees on what it means
  }
  // After one decode, anything still encoded was double encoded (`%252e%252e`).
  if (/%[0-9a-f]{2}/i.test(decoded)) return 'traversal';
  if (decoded.includes('\\') || hasControlChar(decoded)) return 'traversal';
  if (decoded.startsWith('//')) return 'authority';
  for (const segment of decoded.split('/')) {
    if (segment === '..' || segment === '.') return 'traversal';
  }
  return 'ok';
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** `Host` as compared: lowercased, port stripped (IPv6 brackets kept), trailing dot stripped. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end === -1 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) h = h.slice(0, colon);
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}


const MESSAGES: Record<Exclude<RequestTargetClass, 'ok'>, string> = {
  absolute: 'request-target must be a path (this server is not a proxy)',
  authority: 'request-target must not name another host',
  traversal: 'request path must not contain traversal or encoded separators',
};

export function hostGuard(allowedHosts: readonly string[]): RequestHandler {
  const allowed = new Set(allowedHosts.map(normalizeHost));
  return (req, res, next) => {
    // `req.originalUrl` is what Node received, before any router stripped a mount path.
    const verdict = classifyRequestTarget(req.originalUrl);
    if (verdict !== 'ok') {
      res.status(400).set('cache-control', 'no-store').json(toErrorBody(new ValidationError(MESSAGES[verdict])));
      return;
    }
    if (allowed.size > 0) {
      const host = req.headers.host;
      if (host === undefined || !allowed.has(normalizeHost(host))) {
        res.status(421).set('cache-control', 'no-store').json(toErrorBody(new MisdirectedRequestError('this server does not serve that host')));
        return;
      }
    }
    next();
  };
}
