import type { RequestHandler } from 'express';

/**
 * The headers of every dashboard answer (/ui, its files, /ui/api): never cached, never framed,
 * never sniffed into another type, no referrer leaving for another origin. `policy` is the
 * Content-Security-Policy; the page's own (static-files.ts pagePolicy) replaces it on the page.
 */
export function uiHeaders(policy = "default-src 'none'; frame-ancestors 'none'"): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('x-frame-options', 'DENY');
    // Not no-referrer: under it a browser sends `Origin: null` with the login form, which the
    // origin check (session-check.ts) must refuse. Nothing leaves for other origins either way.
    res.setHeader('referrer-policy', 'same-origin');
    res.setHeader('cross-origin-resource-policy', 'same-origin');
    res.setHeader('content-security-policy', policy);
    next();
  };
}
