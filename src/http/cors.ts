import type { RequestHandler } from 'express';

/**
 * CORS for the collection routes: browsers post hits from the site's own origin to the tagging
 * domain. `*` allows any origin; otherwise the request's Origin is echoed only when listed.
 * Preflights (OPTIONS) are answered here with 204.
 * https://fetch.spec.whatwg.org/#http-cors-protocol
 */
export function cors(allowedOrigins: readonly string[]): RequestHandler {
  const any = allowedOrigins.includes('*');
  const allowed = new Set(allowedOrigins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin !== undefined && (any || allowed.has(origin))) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
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
