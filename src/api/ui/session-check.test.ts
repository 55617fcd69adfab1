import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '../../http/errors.ts';
import { crossOriginProblem } from './session-check.ts';

/** A route answering whether crossOriginProblem let the request through, behind `hops` trusted proxies. */
function appWith(hops: number): express.Express {
  const app = express();
  app.set('trust proxy', hops);
  app.all('/x', (req, res, next) => {
    const problem = crossOriginProblem(req);
    if (problem === undefined) res.json({ ok: true });
    else next(problem);
  });
  app.use(errorHandler(pino({ level: 'silent' })));
  return app;
}

describe('crossOriginProblem', () => {
  const app = appWith(0);
  it.each<[string, Record<string, string>, number]>([
    ['no Origin, no Sec-Fetch-Site (curl)', {}, 200],
    ['the same origin', { Origin: 'http://tags.example.com', Host: 'tags.example.com' }, 200],
    ['the same origin, default port written out in Host', { Origin: 'https://tags.example.com', Host: 'tags.example.com:443' }, 200],
    ['the same host on another port', { Origin: 'http://tags.example.com:8080', Host: 'tags.example.com' }, 403],
    ['another host', { Origin: 'https://evil.example', Host: 'tags.example.com' }, 403],
    ['a sibling subdomain', { Origin: 'https://www.example.com', Host: 'tags.example.com' }, 403],
    ['Origin null without Sec-Fetch-Site', { Origin: 'null', Host: 'tags.example.com' }, 403],
    ['not an http origin', { Origin: 'file://', Host: 'tags.example.com' }, 403],
    ['Sec-Fetch-Site same-origin decides (Origin null)', { Origin: 'null', 'Sec-Fetch-Site': 'same-origin', Host: 'tags.example.com' }, 200],
    ['Sec-Fetch-Site none (typed by the user)', { 'Sec-Fetch-Site': 'none' }, 200],
    ['Sec-Fetch-Site same-site', { 'Sec-Fetch-Site': 'same-site' }, 403],
    ['Sec-Fetch-Site cross-site, Origin matching', { 'Sec-Fetch-Site': 'cross-site', Origin: 'http://tags.example.com', Host: 'tags.example.com' }, 403],
  ])('POST: %s → %i', async (_name, headers, status) => {
    const req = request(app).post('/x');
    for (const [k, v] of Object.entries(headers)) req.set(k, v);
    const res = await req;
    expect(res.status).toBe(status);
    if (status === 403) expect(res.body.error).toMatchObject({ code: 'TW_ERR_FORBIDDEN', details: { reason: 'origin' } });
  });

  it('GET is never refused for its origin', async () => {
    expect((await request(app).get('/x').set('Origin', 'https://evil.example').set('Sec-Fetch-Site', 'cross-site')).status).toBe(200);
  });

  it('behind a trusted proxy the host is X-Forwarded-Host; without trust it is not', async () => {
    const headers = { Origin: 'https://tags.example.com', Host: 'internal:8080', 'X-Forwarded-Host': 'tags.example.com' };
    expect((await request(appWith(1)).post('/x').set(headers)).status).toBe(200);
    expect((await request(appWith(0)).post('/x').set(headers)).status).toBe(403);
  });
});
