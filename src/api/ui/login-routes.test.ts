import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '../../http/errors.ts';
import { FakeClock } from '../../lib/fake-clock.ts';
import { createFailureThrottle } from '../rate-limit.ts';
import { uiLoginRouter } from './login-routes.ts';
import { createUiSessions } from './session.ts';
import { sessionAuth } from './session-check.ts';

const KEY = 'admin-key-0123456789abcdef';

function appWith(o: { trustProxyHops: number; secureCookie: boolean }): express.Express {
  const clock = new FakeClock(0);
  const sessions = createUiSessions({ adminKey: KEY, ttlSeconds: 600, clock });
  const app = express();
  app.set('trust proxy', o.trustProxyHops);
  app.use(uiLoginRouter({ adminKey: KEY, sessions, session: sessionAuth(sessions), failures: createFailureThrottle({ perSecond: 1, burst: 10, clock }), ...o }));
  app.use(errorHandler(pino({ level: 'silent' })));
  return app;
}

const cookieOf = (res: request.Response): string => ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '';

describe('dashboard login: the Secure flag', () => {
  it('Secure when the login came over https through a trusted proxy, or always with ui.secureCookie', async () => {
    const proxied = appWith({ trustProxyHops: 1, secureCookie: false });
    const https = await request(proxied).post('/ui/login').set('X-Forwarded-Proto', 'https').send({ key: KEY });
    expect(cookieOf(https)).toMatch(/; Max-Age=600; Secure$/);
    const http = await request(proxied).post('/ui/login').send({ key: KEY });
    expect(cookieOf(http)).not.toContain('Secure');
    // Not trusted: a client's own X-Forwarded-Proto says nothing.
    const direct = appWith({ trustProxyHops: 0, secureCookie: false });
    expect(cookieOf(await request(direct).post('/ui/login').set('X-Forwarded-Proto', 'https').send({ key: KEY }))).not.toContain('Secure');
    const always = appWith({ trustProxyHops: 0, secureCookie: true });
    expect(cookieOf(await request(always).post('/ui/login').send({ key: KEY }))).toMatch(/; Secure$/);
  });

  it('bodies: a form or JSON key; anything else 415; oversized 413; a JSON body without a key is a wrong key', async () => {
    const app = appWith({ trustProxyHops: 0, secureCookie: false });
    expect((await request(app).post('/ui/login').set('Content-Type', 'text/plain').send(KEY)).status).toBe(415);
    expect((await request(app).post('/ui/login').type('form').send({ key: 'k'.repeat(5000) })).status).toBe(413);
    expect((await request(app).post('/ui/login').set('Content-Type', 'application/json').send('[1]')).status).toBe(401);
    expect((await request(app).post('/ui/login').set('Content-Type', 'application/json').send('{')).status).toBe(400);
  });
});
