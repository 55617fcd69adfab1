import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';

/**
 * The CORS answer headers for a request: the request's Origin is echoed when `*` or the origin
 * itself is allowed. Shared by the middleware and the Segment fast path, so both answer alike.
 */
export function corsHeaders(allowedOrigins: readonly string[]): (req: IncomingMessage, res: ServerResponse) => void {
  const any = allowedOrigins.includes('*');
  const allowed = new Set(allowedOrigins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin !== undefined && (any || allowed.has(origin))) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
  };
}

/**
 * CORS for the collection routes: browsers post hits from the site's own origin to the tagging
 * domain. `*` allows any origin; otherwise the request's Origin is echoed only when listed.
 * Preflights (OPTIONS) are answered here with 204.
 * https://fetch.spec.whatwg.org/#http-cors-protocol
 */
export function cors(allowedOrigins: readonly string[]): RequestHandler {
  const headers = corsHeaders(allowedOrigins);
  return (req, res, next) => {
    headers(req, res);
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
      res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? 'content-type');
      res.setHeader('access-control-max-age', '86400');
      res.status(204).end();
      return;
    }
    next();
  };
}
