/**
 * The guard that keeps Tagwarden from ever acting as an open proxy, run on every request before
 * any route (src/app.ts):
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
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { MisdirectedRequestError, ValidationError } from '../errors.ts';
import { sendErrorJson } from '../http/errors.ts';
import { assignRequestId, requestIdOf } from '../observability/request-id.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';

export type RequestTargetClass = 'ok' | 'absolute' | 'authority' | 'traversal';

/** Classifies a raw request-target (`req.url` as Node received it). Pure. */
export function classifyRequestTarget(rawUrl: string): RequestTargetClass {
  // Origin form only; anything else (`http://…`, `evil.com/x`, `*`, `\\host`) is a proxy request.
  if (!rawUrl.startsWith('/')) return 'absolute';
  // Every request passes here: a path of plain characters (the hit routes', the scripts') is
  // judged in one scan.
  const plain = plainClass(rawUrl);
  if (plain !== undefined) return plain;
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
  return hasDotSegment(decoded) ? 'traversal' : 'ok';
}

/**
 * The class of a target whose path (up to `?` or `#`) has only letters, digits and `-._~/`:
 * nothing encoded, no userinfo, no backslash, no control character, so only a leading `//` and
 * dot segments are left to check. Undefined for any other path.
 */
function plainClass(url: string): RequestTargetClass | undefined {
  let end = url.length;
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x3f || c === 0x23) {
      end = i;
      break;
    }
    const plain = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2f || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    if (!plain) return undefined;
  }
  if (end >= 2 && url.charCodeAt(1) === 0x2f) return 'authority';
  const dot = url.indexOf('/.');
  if (dot === -1 || dot >= end) return 'ok';
  return hasDotSegment(url.slice(0, end)) ? 'traversal' : 'ok';
}

function hasDotSegment(path: string): boolean {
  for (const segment of path.split('/')) {
    if (segment === '..' || segment === '.') return true;
  }
  return false;
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

/**
 * The guard as a request filter, run once for every request before any route (hit routes and
 * Express alike): answers a refused request (400 or 421, JSON, never cached) and returns false, or
 * returns true to let it through. Paths in `anyHost` (health probes, which load balancers send to
 * the instance's address) are served whatever the Host; matched as Express matches a route
 * (case-insensitive, one optional trailing slash).
 */
function requestGuard(allowedHosts: readonly string[], anyHost: readonly string[] = [], refusals?: RateLimitedLog): (req: IncomingMessage, res: ServerResponse) => boolean {
  const allowed = new Set(allowedHosts.map(normalizeHost));
  const probes = new Set(anyHost.map((p) => p.toLowerCase()));
  // Logged by reason only: the target and the Host are the sender's text (a probe, an attack), never repeated.
  const refuse = (req: IncomingMessage, res: ServerResponse, reason: string, err: ValidationError | MisdirectedRequestError): false => {
    refusals?.('warn', `guard:${reason}`, { requestId: requestIdOf(req), status: err.status, code: err.code, reason }, 'request refused by the guard');
    sendErrorJson(res, err);
    return false;
  };
  return (req, res) => {
    // `req.url` is the request-target exactly as Node received it.
    const url = req.url ?? '';
    const verdict = classifyRequestTarget(url);
    if (verdict !== 'ok') return refuse(req, res, `target_${verdict}`, new ValidationError(MESSAGES[verdict]));
    if (allowed.size > 0) {
      const host = req.headers.host;
      if ((host === undefined || !allowed.has(normalizeHost(host))) && !probes.has(probePath(url))) {
        return refuse(req, res, 'host_not_allowed', new MisdirectedRequestError('this server does not serve that host'));
      }
    }
    return true;
  };
}

/** A request's path as compared with the probe paths: no query, lower case, no trailing slash. */
function probePath(url: string): string {
  const path = url.split(/[?#]/, 1)[0]!.toLowerCase();
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * `listener` behind the guard (src/app.ts serves the hit routes and Express this way). Every
 * request is given its id first (src/observability/request-id.ts), so even a refused one answers with it.
 * `refusals`: where the guard's refusals are logged (warn, rate-limited per reason); absent: not logged.
 */
export function guarded(allowedHosts: readonly string[], listener: RequestListener, anyHost: readonly string[] = [], refusals?: RateLimitedLog): RequestListener {
  const guard = requestGuard(allowedHosts, anyHost, refusals);
  return (req, res) => {
    assignRequestId(req, res);
    if (guard(req, res)) listener(req, res);
  };
}
