import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { UnavailableError } from '../errors.ts';
import { hitRouter, type HitRoute, type HitTarget } from './hit-router.ts';

const silent = pino({ level: 'silent' });

/** A router over `routes` with a 404 for the rest, and what each handler saw. */
function serve(routes: ReadonlyMap<string, HitRoute>, accepting = (): boolean => true) {
  const router = hitRouter(routes, { accepting, log: silent });
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (!router(req, res)) res.writeHead(404).end('none');
  };
}

function recording(): { route: HitRoute; seen: Array<{ method: string | undefined } & Omit<HitTarget, 'fail' | 'requestId'>> } {
  const seen: Array<{ method: string | undefined } & Omit<HitTarget, 'fail' | 'requestId'>> = [];
  const answer = (req: IncomingMessage, res: ServerResponse, t: HitTarget): void => {
    seen.push({ method: req.method, path: t.path, query: t.query });
    res.writeHead(204).end();
  };
  return { route: { GET: answer, POST: answer }, seen };
}

describe('hitRouter', () => {
  it('matches as Express 5 does: any case, one optional trailing slash, the query and a fragment cut off', async () => {
    const { route, seen } = recording();
    const app = serve(new Map([['/g/collect', route]]));
    for (const path of ['/g/collect', '/G/Collect', '/g/collect/', '/g/collect?v=2&en=x', '/g/collect#top']) {
      expect((await request(app).get(path)).status, path).toBe(204);
    }
    for (const path of ['/g/collect//', '/g/collectx', '/g/%63ollect', '/g', '/g/collect/x']) {
      expect((await request(app).get(path)).status, path).toBe(404);
    }
    expect(seen.map((s) => [s.path, s.query])).toEqual([
      ['/g/collect', ''],
      ['/G/Collect', ''],
      ['/g/collect/', ''],
      ['/g/collect', 'v=2&en=x'],
      ['/g/collect', ''],
    ]);
  });

  it('does not fold characters beyond ASCII (the Kelvin sign is no k)', () => {
    const { route } = recording();
    const router = hitRouter(new Map([['/tr/k', route]]), { accepting: () => true, log: silent });
    // As Node hands over a raw request-target; a client library would percent-encode it first.
    const req = { method: 'GET', url: '/tr/\u212a', headers: {} } as IncomingMessage;
    expect(router(req, {} as ServerResponse)).toBe(false);
    expect('/tr/\u212a'.toLowerCase()).toBe('/tr/k');
  });

  it('answers HEAD with the GET handler, and 405 with Allow for a method the route does not take', async () => {
    const { route, seen } = recording();
    const app = serve(new Map([['/tr', route], ['/v1/t', { POST: route.POST! }]]));
    expect((await request(app).head('/tr')).status).toBe(204);
    expect(seen.at(-1)?.method).toBe('HEAD');
    const put = await request(app).put('/v1/t').send('x');
    expect([put.status, put.headers.allow, put.body.error.code]).toEqual([405, 'POST, OPTIONS', 'TW_ERR_METHOD_NOT_ALLOWED']);
    const options = await request(app).options('/tr');
    expect([options.status, options.headers.allow]).toEqual([204, 'GET, HEAD, POST, OPTIONS']);
  });

  it('refuses with 503 once shutdown began, and answers what a handler throws or fails with', async () => {
    let accepting = true;
    const app = serve(
      new Map<string, HitRoute>([
        ['/throws', { GET: () => { throw new UnavailableError('later'); } }],
        ['/bug', { GET: (_req, _res, t) => setImmediate(() => t.fail(new Error('secret detail'))) }],
        ['/ok', { GET: (_req, res) => res.writeHead(204).end() }],
      ]),
      () => accepting,
    );
    expect((await request(app).get('/throws')).body).toEqual({ error: { code: 'TW_ERR_UNAVAILABLE', message: 'later' } });
    const bug = await request(app).get('/bug');
    expect([bug.status, bug.body]).toEqual([500, { error: { code: 'TW_ERR_INTERNAL', message: 'internal error' } }]);
    accepting = false;
    const late = await request(app).get('/ok');
    expect([late.status, late.body.error.code]).toEqual([503, 'TW_ERR_UNAVAILABLE']);
  });

  it('takes paths in their matching form only', () => {
    expect(() => hitRouter(new Map([['/V1/Track', {}]]), { accepting: () => true, log: silent })).toThrow(/lower case/);
    expect(() => hitRouter(new Map([['/tr/', {}]]), { accepting: () => true, log: silent })).toThrow(/trailing slash/);
  });
});

describe('hitRouter: the log of an unexpected error', () => {
  it('names the method and path, never the query string (the hit itself)', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const boom = (): void => {
      throw new Error('boom');
    };
    const router = hitRouter(new Map([['/g/collect', { GET: boom, POST: (_req, _res, t) => t.fail(new Error('late')) }]]), { accepting: () => true, log });
    const app = (req: IncomingMessage, res: ServerResponse): void => void router(req, res);
    expect((await request(app).get('/g/collect?cid=visitor-1&uid=alice%40example.com')).status).toBe(500);
    expect((await request(app).post('/g/collect?cid=visitor-2').send('x')).status).toBe(500);
    expect(lines).toHaveLength(2);
    const parsed = lines.map((l) => JSON.parse(l) as { level: number; path: string; method: string });
    expect(parsed.map((p) => [p.level, p.method, p.path])).toEqual([
      [50, 'GET', '/g/collect'],
      [50, 'POST', '/g/collect'],
    ]);
    expect(lines.join('')).not.toMatch(/visitor-|alice|cid=/);
  });
});
