import { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { NotFoundError, RateLimitedError, ValidationError } from '../errors.ts';
import { jsonBody } from '../http/body.ts';
import { parseOr400 } from '../api/consent/validate.ts';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';
import type { PreviewRegistry } from './registry.ts';
import { openEventStream } from './sse.ts';
import { MAX_TOKEN_CHARS } from './token.ts';
import { PREVIEW_COOKIE } from './mark.ts';
import { MAX_ACTIVE_PREVIEWS, MAX_STREAMS_PER_PREVIEW } from './registry.ts';

export interface PreviewRouteOptions {
  registry: PreviewRegistry;
  /** The API's guard (src/api/guard.ts); preview needs scope admin (the dashboard session counts as one). */
  guard: (scope: 'admin') => RequestHandler;
  /** Destinations a test event code may be given for. */
  destinationIds: readonly string[];
  maxBodyBytes: number;
  clock: Clock;
  /** Starts and stops are logged at info (who: the API key's id; never the token). */
  log?: Logger | undefined;
}

export const previewStartSchema = z
  .object({
    mode: z.enum(['test', 'silent']),
    ttlMinutes: z.number().int().min(1).max(240).default(60),
    testEventCodes: z
      .record(z.string().min(1).max(140), z.string().min(1).max(100).regex(/^[\x21-\x7e]+$/, 'printable ASCII, no spaces'))
      .refine((codes) => Object.keys(codes).length <= MAX_ACTIVE_PREVIEWS * 5, 'too many codes')
      .default({}),
  })
  .strict();

/**
 * `POST /api/v1/preview`, `DELETE /api/v1/preview/:id`, `GET /api/v1/preview/:id/stream` (admin),
 * and on the tagging domain `GET /preview/start?token=` / `GET /preview/stop`, which set and clear
 * the browser's preview cookie (docs/preview.md, UI-CONTRACT.md "Preview").
 */
export function previewRouter(o: PreviewRouteOptions): Router {
  const { registry } = o;
  const known = new Set(o.destinationIds);
  const router = Router();

  router.post('/api/v1/preview', o.guard('admin'), jsonBody(o.maxBodyBytes), (req, res) => {
    // The consent routes' 400 (a whole-body failure named `body`).
    const body = parseOr400(previewStartSchema, req.body, 'body');
    const unknown = Object.keys(body.testEventCodes).filter((id) => !known.has(id));
    if (unknown.length > 0) {
      throw new ValidationError(`testEventCodes: unknown destination ${unknown.map((u) => `"${u}"`).join(', ')}`, { details: { issues: unknown.map((u) => ({ path: `testEventCodes.${u}`, message: 'no such destination' })) } });
    }
    const started = registry.start({ mode: body.mode, ttlMs: body.ttlMinutes * 60_000, testEventCodes: body.testEventCodes });
    o.log?.info({ preview: started.id, mode: started.mode, expiresAt: started.expiresAt, destinationsWithCode: Object.keys(body.testEventCodes), apiKeyId: res.locals.apiKeyId as unknown, requestId: res.locals.requestId as unknown }, 'preview started');
    res.status(201).setHeader('cache-control', 'no-store');
    res.json({ ...started, startUrl: `/preview/start?token=${encodeURIComponent(started.token)}` });
  });

  router.delete('/api/v1/preview/:id', o.guard('admin'), (req, res) => {
    const id = idOf(req.params.id);
    if (!registry.stop(id)) throw new NotFoundError('no such preview (stopped or expired)');
    o.log?.info({ preview: id, apiKeyId: res.locals.apiKeyId as unknown, requestId: res.locals.requestId as unknown }, 'preview stopped');
    res.status(204).end();
  });

  router.get('/api/v1/preview/:id/stream', o.guard('admin'), (req, res) => {
    const id = idOf(req.params.id);
    const room = registry.room(id);
    if (room === 'unknown') throw new NotFoundError('no such preview (stopped or expired)');
    if (room === 'full') throw new RateLimitedError(`at most ${MAX_STREAMS_PER_PREVIEW} streams per preview`);
    let remove = (): void => undefined;
    const stream = openEventStream(res, o.clock, () => remove());
    const added = registry.subscribe(id, stream);
    if (typeof added === 'object') remove = added.remove;
    else stream.end('stopped');
  });

  router.get('/preview/start', (req, res) => {
    const token = req.query.token;
    const found = typeof token === 'string' && token.length <= MAX_TOKEN_CHARS ? registry.resolve(token) : undefined;
    if (found === undefined) {
      page(res, 400, 'Preview not started', 'This preview link is invalid, expired or stopped. Start a new preview from the dashboard.');
      return;
    }
    const maxAge = Math.max(1, Math.floor((found.expiresAt - o.clock.now()) / 1000));
    // SameSite=None: the hits come from the site's pages to the tagging domain; Secure goes with it.
    res.setHeader('set-cookie', `${PREVIEW_COOKIE}=${token as string}; Path=/; HttpOnly; Secure; SameSite=None; Max-Age=${maxAge}`);
    page(res, 200, 'Preview is on', `This browser's hits are shown in the dashboard's preview (${found.mark.mode === 'test' ? 'sent with the vendors\u2019 test modes' : 'sent to no vendor'}) for ${Math.ceil(maxAge / 60)} more minutes. Other visitors are not affected.`);
  });

  router.get('/preview/stop', (_req, res) => {
    res.setHeader('set-cookie', `${PREVIEW_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=None; Max-Age=0`);
    page(res, 200, 'Preview is off', "This browser's hits are ordinary hits again.");
  });

  return router;
}

/** A route's `:id` (Express types it loosely); the registry knows no id that is not one string. */
function idOf(raw: unknown): string {
  return typeof raw === 'string' ? raw : '';
}

/** A small page with no script and nothing of the request in it (the token is never reflected). */
function page(res: Response, status: number, title: string, text: string): void {
  res.status(status);
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  // The start URL carries the token: no page it links to learns it.
  res.setHeader('referrer-policy', 'no-referrer');
  res.send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`);
}
