import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * CORS for the collection routes: browsers post hits from the site's own origin to the tagging
 * domain. `*` allows any origin; otherwise the request's Origin is echoed only when listed.
 * https://fetch.spec.whatwg.org/#http-cors-protocol
 */
export interface Cors {
  /** Sets the answer headers of any request to the route (an error included). */
  headers(req: IncomingMessage, res: ServerResponse): void;
  /** Answers a preflight (OPTIONS) with 204, after `headers`. */
  preflight(req: IncomingMessage, res: ServerResponse): void;
}

export function corsPolicy(allowedOrigins: readonly string[]): Cors {
  const any = allowedOrigins.includes('*');
  const allowed = new Set(allowedOrigins);
  return {
    headers(req, res) {
      const origin = req.headers.origin;
      if (origin !== undefined && (any || allowed.has(origin))) {
        res.setHeader('access-control-allow-origin', origin);
        res.setHeader('access-control-allow-credentials', 'true');
        res.setHeader('vary', 'Origin');
      }
    },
    preflight(req, res) {
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
      res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? 'content-type');
      res.setHeader('access-control-max-age', '86400');
      res.writeHead(204);
      res.end();
    },
  };
}
