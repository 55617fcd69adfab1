import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import type { SendOptions, SendResult } from '../lib/http/send.ts';
import type { BoundAuth } from '../destinations/auth/bind.ts';
import type { BoundDestination, VendorRequest } from '../destinations/types.ts';
import { createTokenSource, withAuth, type ExchangeFn } from './oauth2.ts';
import type { AttemptResult, SendFn } from './scheduler.ts';
import { decideRetry } from './retry-policy.ts';

const auth: BoundAuth = {
  kind: 'oauth2',
  tokenUrl: 'https://oauth.example/token',
  clientId: 'cid',
  clientSecret: 'csecret',
  refreshToken: 'rtoken',
  clientAuth: 'body',
  marginMs: 60_000,
  cacheKey: 'k1',
};
const destination = { id: 'ads', auth } as unknown as BoundDestination;
const req: VendorRequest = { method: 'POST', url: 'https://vendor.example/x', headers: { 'content-type': 'application/json' }, body: '{}' };
const opts: SendOptions = { timeoutMs: 1000 };

function answer(status: number, body?: unknown): SendResult {
  const buf = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const r: SendResult = { outcome: { kind: 'response', status }, durationMs: 1, responseBytes: buf?.length ?? 0, truncated: false };
  if (buf !== undefined) r.body = buf;
  return r;
}

/** A token endpoint handing out tok-1, tok-2, … with the given lifetime. */
function tokenEndpoint(expiresIn = 3600) {
  const calls: VendorRequest[] = [];
  const exchange: ExchangeFn = async (r) => {
    calls.push(r);
    await Promise.resolve();
    return answer(200, { access_token: `tok-${calls.length}`, token_type: 'Bearer', expires_in: expiresIn });
  };
  return { calls, exchange };
}

describe('token source', () => {
  it('exchanges the refresh token once and caches the access token until expiry minus the margin', async () => {
    const clock = new FakeClock();
    const ep = tokenEndpoint(3600);
    const tokens = createTokenSource({ clock, exchange: ep.exchange });
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'tok-1' });
    const form = new URLSearchParams(String(ep.calls[0]!.body));
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'refresh_token', refresh_token: 'rtoken', client_id: 'cid', client_secret: 'csecret' });
    expect(ep.calls[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    clock.advance(3600_000 - 60_000 - 1);
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'tok-1' });
    clock.advance(1);
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'tok-2' });
    expect(ep.calls).toHaveLength(2);
  });

  it('an absent expires_in counts as 300 s, a huge one as a day', async () => {
    const clock = new FakeClock();
    let n = 0;
    const answers = [{ access_token: 'a' }, { access_token: 'b', expires_in: 1e12 }, { access_token: 'c' }];
    const tokens = createTokenSource({ clock, exchange: () => Promise.resolve(answer(200, answers[n++])) });
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'a' });
    clock.advance(240_000);
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'b' });
    clock.advance(86_400_000 - 60_000 - 1);
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'b' });
    clock.advance(1);
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'c' });
  });

  it('is single-flight: concurrent callers share one exchange', async () => {
    const ep = tokenEndpoint();
    const tokens = createTokenSource({ clock: new FakeClock(), exchange: ep.exchange });
    const all = await Promise.all([1, 2, 3, 4, 5].map(() => tokens.get(auth, 1000)));
    expect(all.every((r) => r.ok && r.token === 'tok-1')).toBe(true);
    expect(ep.calls).toHaveLength(1);
  });

  it('basic client authentication sends the client in the header, not the form', async () => {
    const ep = tokenEndpoint();
    const tokens = createTokenSource({ clock: new FakeClock(), exchange: ep.exchange });
    await tokens.get({ ...auth, clientAuth: 'basic', cacheKey: 'k2' }, 1000);
    expect(ep.calls[0]!.headers.authorization).toBe(`Basic ${Buffer.from('cid:csecret').toString('base64')}`);
    expect(new URLSearchParams(String(ep.calls[0]!.body)).has('client_secret')).toBe(false);
  });

  it.each<[SendResult, boolean, string]>([
    [answer(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }), false, 'auth_invalid_grant'],
    [answer(401, { error: 'invalid_client' }), false, 'auth_invalid_client'],
    [answer(403, 'nope'), false, 'auth_status_403'],
    [answer(503), true, 'auth_status_503'],
    [answer(429), true, 'auth_status_429'],
    [answer(200, { token_type: 'Bearer' }), true, 'auth_invalid_response'],
    [answer(200, { access_token: 'a\r\nb' }), true, 'auth_invalid_response'],
    [answer(200, 'not json'), true, 'auth_invalid_response'],
    [{ outcome: { kind: 'timeout' }, durationMs: 1, responseBytes: 0, truncated: false }, true, 'auth_timeout'],
    [{ outcome: { kind: 'network', code: 'ECONNREFUSED' }, durationMs: 1, responseBytes: 0, truncated: false }, true, 'auth_network'],
  ])('a failed exchange is a fixed reason: %#', async (sent, retryable, reason) => {
    const tokens = createTokenSource({ clock: new FakeClock(), exchange: () => Promise.resolve(sent) });
    expect(await tokens.get(auth, 1000)).toEqual({ ok: false, outcome: { kind: 'auth', retryable, reason } });
  });

  it('a failure is not cached: the next request tries again', async () => {
    let n = 0;
    const tokens = createTokenSource({ clock: new FakeClock(), exchange: () => Promise.resolve(++n === 1 ? answer(503) : answer(200, { access_token: 'ok' })) });
    expect((await tokens.get(auth, 1000)).ok).toBe(false);
    expect(await tokens.get(auth, 1000)).toEqual({ ok: true, token: 'ok' });
  });
});

describe('withAuth', () => {
  function vendor(statuses: number[]) {
    const seen: { authorization: string | undefined; secrets: readonly string[] | undefined }[] = [];
    const send: SendFn = (r, o) => {
      seen.push({ authorization: r.headers.authorization, secrets: o.secretValues });
      return Promise.resolve(answer(statuses[seen.length - 1] ?? 200));
    };
    return { seen, send };
  }

  it('adds the bearer token and masks it in the excerpt; a destination without auth is untouched', async () => {
    const v = vendor([200, 200]);
    const send = withAuth(v.send, createTokenSource({ clock: new FakeClock(), exchange: tokenEndpoint().exchange }));
    await send(req, { ...opts, secretValues: ['dev'] }, destination);
    await send(req, opts, { id: 'plain' } as BoundDestination);
    expect(v.seen).toEqual([
      { authorization: 'Bearer tok-1', secrets: ['dev', 'tok-1'] },
      { authorization: undefined, secrets: undefined },
    ]);
    expect(req.headers.authorization).toBeUndefined();
  });

  it('a vendor 401 refreshes once and repeats the request once', async () => {
    const ep = tokenEndpoint();
    const v = vendor([401, 200]);
    const sent = await withAuth(v.send, createTokenSource({ clock: new FakeClock(), exchange: ep.exchange }))(req, opts, destination);
    expect(sent.outcome).toEqual({ kind: 'response', status: 200 });
    expect(v.seen.map((s) => s.authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    expect(ep.calls).toHaveLength(2);
  });

  it('a second 401 is the answer (no loop)', async () => {
    const v = vendor([401, 401, 401]);
    const sent = await withAuth(v.send, createTokenSource({ clock: new FakeClock(), exchange: tokenEndpoint().exchange }))(req, opts, destination);
    expect(sent.outcome).toEqual({ kind: 'response', status: 401 });
    expect(v.seen).toHaveLength(2);
  });

  it('no token: nothing is sent, and the policy retries (retryable) or gives up (rejected) with the auth codes', async () => {
    const v = vendor([]);
    const failing = (status: number): ExchangeFn => () => Promise.resolve(answer(status, { error: 'invalid_grant' }));
    const retryable: AttemptResult = await withAuth(v.send, createTokenSource({ clock: new FakeClock(), exchange: failing(500) }))(req, opts, destination);
    const rejected: AttemptResult = await withAuth(v.send, createTokenSource({ clock: new FakeClock(), exchange: failing(400) }))(req, opts, destination);
    expect(v.seen).toHaveLength(0);
    const policy = { maxAttempts: 5, maxTotalMs: 60_000, baseDelayMs: 100, maxDelayMs: 1000 };
    const decide = (outcome: AttemptResult['outcome']) =>
      decideRetry({ attempt: 1, firstAttemptAt: 0, now: 0, method: 'POST', idempotent: false, retrySafe: new Set(), outcome, policy, random: () => 0.5 });
    expect(decide(retryable.outcome)).toMatchObject({ action: 'retry', reason: 'auth_status_500', error: { code: 'TW_ERR_AUTH_RETRYABLE', retryable: true } });
    expect(decide(rejected.outcome)).toEqual({ action: 'give_up', reason: 'auth_invalid_grant', error: { code: 'TW_ERR_AUTH_REJECTED', retryable: false } });
  });
});
