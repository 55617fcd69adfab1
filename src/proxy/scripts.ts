/**
 * First-party script proxy: gtag.js, gtm.js, fbevents.js and the Meta pixel's config script served
 * from this domain, fetched from the vendor origins through http-proxy-middleware.
 *
 * Never an open proxy:
 * - two fixed targets (the `google` and `meta` origins), one proxy instance each; no `router`, so
 *   nothing in a request can choose where a connection goes;
 * - an explicit allowlist of routes; anything else under those prefixes is 404 before any upstream
 *   request;
 * - the upstream path is a constant or built from validated parameters, and the query string is
 *   rebuilt from allowed, validated keys (unknown keys dropped, invalid values 400);
 * - redirects are never followed (`followRedirects: false`) nor passed on: an upstream 3xx is 502;
 * - only a few request headers go upstream (no cookies, no client IP), only a few response
 *   headers come back (no `set-cookie`).
 *
 * The body is piped untouched: a gzip/br answer reaches the browser byte for byte with its
 * `content-encoding`. Upstream errors and timeouts are answered 502 `TW_ERR_UPSTREAM` JSON.
 */
import { requestIdOf } from '../observability/request-id.ts';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { ConfigError, NotFoundError, toErrorBody, UpstreamError, ValidationError } from '../errors.ts';
import { sendErrorJson } from '../http/errors.ts';
import { classifyRequestTarget } from './host-guard.ts';

export interface ScriptProxyOptions {
  /** Vendor origins (scheme://host[:port], no path). Defaults: Google Tag Manager and Meta's CDN. */
  origins?: { google: string; meta: string };
  /** Upstream socket inactivity limit (connect, headers, body), default 10 s. */
  timeoutMs?: number;
  /** Told about each upstream failure (a pino logger fits). */
  log?: { warn: (obj: object, msg: string) => void };
}

export const DEFAULT_ORIGINS = { google: 'https://www.googletagmanager.com', meta: 'https://connect.facebook.net' } as const;
export const DEFAULT_CACHE_CONTROL = 'public, max-age=300';

/** Request headers forwarded upstream; everything else (cookie, authorization, x-forwarded-*, …) is dropped. */
const REQUEST_HEADERS = new Set(['accept', 'accept-encoding', 'accept-language', 'user-agent', 'if-none-match', 'if-modified-since']);
/** Response headers passed back; everything else (set-cookie, alt-svc, report-to, …) is dropped. */
const RESPONSE_HEADERS = ['content-type', 'content-encoding', 'content-length', 'cache-control', 'etag', 'last-modified', 'expires', 'vary'] as const;

type QueryRules = Record<string, RegExp>;
const GTAG_ID = /^(G|AW|DC|GT)-[A-Z0-9]{4,20}$/;
const GTM_ID = /^GTM-[A-Z0-9]{4,12}$/;
const DATA_LAYER = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;
const LOCALE = /^[a-z]{2}_[A-Z]{2}$/;
const PIXEL_ID = /^[0-9]{5,20}$/;

const GTAG_QUERY: QueryRules = { id: GTAG_ID, l: DATA_LAYER, cx: /^[a-z]{1,8}$/ };
const GTM_QUERY: QueryRules = {
  id: GTM_ID,
  l: DATA_LAYER,
  gtm_auth: /^[A-Za-z0-9_-]{1,64}$/,
  gtm_preview: /^env-[0-9]{1,6}$/,
  gtm_cookies_win: /^x$/,
};
const SIGNALS_QUERY: QueryRules = { v: /^[0-9]{1,4}(\.[0-9]{1,6}){0,3}$/, r: /^(stable|canary)$/ };

/** Validated upstream request-targets, keyed by request, read by `pathRewrite`. */
const targets = new WeakMap<IncomingMessage, string>();

/**
 * Rebuilds a query string from the allowed keys of `rawUrl`'s query, in the rules' order.
 * Unknown keys are dropped; a repeated or invalid allowed key, or a missing required one, throws.
 */
export function rebuildQuery(rawUrl: string, rules: QueryRules, required: readonly string[] = []): string {
  const q = rawUrl.indexOf('?');
  const params = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1).split('#')[0]);
  const out = new URLSearchParams();
  for (const [key, re] of Object.entries(rules)) {
    const values = params.getAll(key);
    if (values.length > 1) throw new ValidationError(`query parameter ${key} given more than once`);
    const v = values[0];
    if (v === undefined) {
      if (required.includes(key)) throw new ValidationError(`query parameter ${key} is required`);
      continue;
    }
    if (!re.test(v)) throw new ValidationError(`query parameter ${key} is invalid`);
    out.set(key, v);
  }
  const s = out.toString();
  return s === '' ? '' : `?${s}`;
}

function parseOrigin(name: string, origin: string): string {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    throw new ConfigError(`script proxy origin ${name} is not a URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '' || u.pathname !== '/' || u.search !== '' || u.hash !== '') {
    throw new ConfigError(`script proxy origin ${name} must be http(s)://host[:port] with nothing else`);
  }
  return u.origin;
}

/** A named route parameter as one string ('' when absent or repeated). */
function param(req: Request, name: string): string {
  const v: unknown = req.params[name];
  return typeof v === 'string' ? v : '';
}


/** The script proxy's routes, and `close()` for shutdown (drops its idle upstream connections). */
export type ScriptProxy = Router & { close(): void };

export function scriptProxyRouter(o: ScriptProxyOptions = {}): ScriptProxy {
  const origins = o.origins ?? DEFAULT_ORIGINS;
  const google = parseOrigin('google', origins.google);
  const meta = parseOrigin('meta', origins.meta);
  const timeoutMs = o.timeoutMs ?? 10_000;

  // One keep-alive pool per vendor: without it every script load paid a new TCP and TLS handshake
  // to the vendor before its first byte. An idle socket is closed after 4 s, before servers
  // commonly drop idle connections (5 s and up), so a reused socket is rarely one being closed.
  // Idle sockets are unref'd by the agent: they never keep the process alive.
  const agents: Array<HttpAgent | HttpsAgent> = [];
  const agentFor = (target: string): HttpAgent | HttpsAgent => {
    const options = { keepAlive: true, maxSockets: 64, maxFreeSockets: 8, timeout: 4_000 };
    const agent = target.startsWith('https:') ? new HttpsAgent(options) : new HttpAgent(options);
    agents.push(agent);
    return agent;
  };

  const proxyFor = (target: string, vendor: string): RequestHandler =>
    createProxyMiddleware<Request, Response>({
      target,
      agent: agentFor(target),
      changeOrigin: true,
      followRedirects: false,
      xfwd: false,
      ws: false,
      proxyTimeout: timeoutMs,
      selfHandleResponse: true,
      // Our own handlers only: the default error plugin answers with text and echoes the URL.
      ejectPlugins: true,
      pathRewrite: (_path, req) => {
        const t = targets.get(req);
        // Unreachable (every route sets it); refuse rather than forward a raw path.
        if (t === undefined) throw new NotFoundError('no script route');
        return t;
      },
      plugins: [
        (proxyServer) => {
          proxyServer.on('proxyReq', (proxyReq: ClientRequest) => {
            // `connection` too: the pool, not the browser, decides whether the upstream socket stays open.
            for (const name of proxyReq.getHeaderNames()) {
              if (name !== 'host' && !REQUEST_HEADERS.has(name)) proxyReq.removeHeader(name);
            }
          });
          proxyServer.on('proxyRes', (proxyRes: IncomingMessage, req: Request, res: Response) => onProxyRes(proxyRes, req, res, vendor));
          proxyServer.on('error', (err: Error, req?: Request, res?: Response | Socket) => {
            o.log?.warn({ err, requestId: requestIdOf(req), vendor, path: req === undefined ? undefined : targets.get(req) }, 'script proxy upstream failed');
            if (res === undefined) return;
            if (!('writeHead' in res)) {
              res.destroy();
            } else if (res.headersSent) {
              res.destroy(); // mid-body: the browser must see a broken script, not a truncated one
            } else {
              sendErrorJson(res, new UpstreamError(`${vendor} could not be reached`));
            }
          });
          proxyServer.on('econnreset', (_err: Error, _req: Request, res: Response) => {
            res.destroy();
          });
        },
      ],
    });

  function onProxyRes(proxyRes: IncomingMessage, req: Request, res: Response, vendor: string): void {
    const status = proxyRes.statusCode ?? 502;
    if (status !== 200 && status !== 304) {
      proxyRes.resume(); // discard the body, so the socket can go back to the pool
      o.log?.warn({ requestId: requestIdOf(req), vendor, status, path: targets.get(req) }, 'script proxy upstream answered an unexpected status');
      if (status === 404) sendErrorJson(res, new NotFoundError(`${vendor} has no such script`));
      else sendErrorJson(res, new UpstreamError(`${vendor} answered ${status}`));
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const name of RESPONSE_HEADERS) {
      const v = proxyRes.headers[name];
      if (v !== undefined) headers[name] = v;
    }
    headers['cache-control'] ??= DEFAULT_CACHE_CONTROL;
    headers['x-content-type-options'] = 'nosniff';
    res.writeHead(status, headers);
    proxyRes.on('error', () => res.destroy());
    proxyRes.on('aborted', () => res.destroy());
    proxyRes.pipe(res);
  }

  const toGoogle = proxyFor(google, 'google');
  const toMeta = proxyFor(meta, 'meta');

  /** Validates, records the upstream target and hands on to the vendor's proxy; 400/404 JSON otherwise. */
  const route =
    (proxy: RequestHandler, build: (req: Request) => string): RequestHandler =>
    (req, res, next) => {
      if (classifyRequestTarget(req.originalUrl) !== 'ok') {
        res.status(400).set('cache-control', 'no-store').json(toErrorBody(new ValidationError('invalid request-target')));
        return;
      }
      let target: string;
      try {
        target = build(req);
      } catch (err) {
        const e = err instanceof ValidationError || err instanceof NotFoundError ? err : new ValidationError('invalid request');
        res.status(e.status).set('cache-control', 'no-store').json(toErrorBody(e));
        return;
      }
      targets.set(req, target);
      return proxy(req, res, next);
    };

  const notFound: RequestHandler = (req, res) => {
    res.status(404).set('cache-control', 'no-store').json(toErrorBody(new NotFoundError(`no script at ${req.method} ${req.path}`)));
  };

  const router = Router({ caseSensitive: true, strict: true });
  router.get('/gtag/js', route(toGoogle, (req) => `/gtag/js${rebuildQuery(req.originalUrl, GTAG_QUERY, ['id'])}`));
  router.get('/gtm.js', route(toGoogle, (req) => `/gtm.js${rebuildQuery(req.originalUrl, GTM_QUERY, ['id'])}`));
  router.get('/:locale/fbevents.js', (req, res, next) => {
    // Not a script route: another router may serve it.
    const locale = param(req, 'locale');
    if (!LOCALE.test(locale)) {
      notFound(req, res, next);
      return;
    }
    return route(toMeta, () => `/${locale}/fbevents.js`)(req, res, next);
  });
  router.get(
    '/signals/config/:pixelId',
    route(toMeta, (req) => {
      const id = param(req, 'pixelId');
      if (!PIXEL_ID.test(id)) throw new ValidationError('pixel id must be 5 to 20 digits');
      return `/signals/config/${id}${rebuildQuery(req.originalUrl, SIGNALS_QUERY)}`;
    }),
  );
  // Everything else under the script prefixes: 404 here, never an upstream request.
  router.all(['/gtag', '/gtag/*rest', '/gtm.js', '/signals', '/signals/*rest', '/:locale/fbevents.js'], notFound);
  return Object.assign(router, {
    close(): void {
      for (const agent of agents) agent.destroy();
    },
  });
}
