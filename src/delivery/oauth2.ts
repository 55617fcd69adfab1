/**
 * The auth step of delivery for templates that declare `auth.oauth2` (docs/templates.md, "auth";
 * src/destinations/auth/): an access token from the refresh-token grant (RFC 6749 §6,
 * https://www.rfc-editor.org/rfc/rfc6749#section-6), sent as `authorization: Bearer` (RFC 6750 §2.1).
 *
 * - The token is exchanged through the one outbound sender (src/lib/http/send.ts) and cached per
 *   set of credentials until `expires_in` minus the template's margin, on delivery's clock.
 * - Single-flight: while one exchange runs, every request for the same credentials waits for it.
 * - A vendor 401 drops the token it was sent with, gets a fresh one and repeats that request once.
 * - A failed exchange is an attempt outcome of its own (`AuthOutcome`: TW_ERR_AUTH_RETRYABLE or
 *   TW_ERR_AUTH_REJECTED, retry-policy.ts); the vendor request did not leave.
 * - No token, refresh token or client secret is ever logged or reported: nothing here logs, the
 *   outcome carries a fixed reason, and the access token is added to the request's secret values
 *   so an error answer that echoes it is masked in its excerpt.
 */
import { LRUCache } from 'lru-cache';
import type { BoundAuth } from '../destinations/auth/bind.ts';
import type { BoundDestination, VendorRequest } from '../destinations/types.ts';
import type { Clock } from '../lib/clock.ts';
import type { SendOptions, SendResult } from '../lib/http/send.ts';
import type { AttemptResult, SendFn } from './scheduler.ts';
import type { AuthOutcome } from './retry-policy.ts';

/** One token-endpoint exchange (send of src/lib/http/send.ts over delivery's agent). */
export type ExchangeFn = (request: VendorRequest, options: SendOptions) => Promise<SendResult>;

export type TokenResult = { ok: true; token: string } | { ok: false; outcome: AuthOutcome };

export interface TokenSource {
  /** A valid access token for these credentials: the cached one, or one exchange shared by every caller. */
  get(auth: BoundAuth, timeoutMs: number): Promise<TokenResult>;
  /** The vendor refused `token` (401): forget it, unless a newer one already replaced it. */
  invalidate(auth: BoundAuth, token: string): void;
}

/** Error codes of a token endpoint's error answer (RFC 6749 §5.2); anything else is reported by status. */
const OAUTH_ERRORS = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);
/** A token endpoint's answer is small; more than this is not a token answer. */
const MAX_TOKEN_RESPONSE_BYTES = 16 * 1024;
/** An access token goes into a header: bounded, visible ASCII (RFC 6750 §2.1 b64token and more). */
const TOKEN_SHAPE = /^[\x21-\x7e]{1,4096}$/;
/** When a token answer has no `expires_in` (RFC 6749 §5.1 only recommends it): assume a short life. */
const DEFAULT_EXPIRES_IN_S = 300;
/** Longest a token is kept, whatever its expires_in says: a day (Google's live an hour). */
const MAX_EXPIRES_IN_S = 86_400;
/** Cached credentials at most; the oldest is forgotten first (reloads with new credentials add entries). */
const MAX_CACHED = 256;

interface Cached {
  token: string;
  expiresAt: number;
}

const failure = (retryable: boolean, reason: string): TokenResult => ({ ok: false, outcome: { kind: 'auth', retryable, reason } });

/** The token endpoint's answer, as a token or as a failure with a fixed reason. */
function readAnswer(sent: SendResult, now: number, marginMs: number): { token: string; expiresAt: number } | TokenResult {
  const { outcome } = sent;
  if (outcome.kind === 'timeout') return failure(true, 'auth_timeout');
  if (outcome.kind === 'network') return failure(true, 'auth_network');
  const status = outcome.status;
  let body: unknown;
  try {
    body = sent.body === undefined || sent.truncated ? undefined : JSON.parse(sent.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  const record = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (status >= 200 && status <= 299) {
    const token = record.access_token;
    const type = record.token_type;
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return failure(true, 'auth_invalid_response');
    if (type !== undefined && (typeof type !== 'string' || type.toLowerCase() !== 'bearer')) return failure(true, 'auth_invalid_response');
    const raw = typeof record.expires_in === 'string' ? Number(record.expires_in) : record.expires_in;
    const expiresIn = typeof raw === 'number' && Number.isFinite(raw) && raw > 0 ? Math.min(raw, MAX_EXPIRES_IN_S) : DEFAULT_EXPIRES_IN_S;
    return { token, expiresAt: now + expiresIn * 1000 - marginMs };
  }
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return failure(true, `auth_status_${status}`);
  const code = record.error;
  if (typeof code === 'string' && OAUTH_ERRORS.has(code)) return failure(false, `auth_${code}`);
  return failure(false, `auth_status_${status}`);
}

/** The token request of the refresh-token grant (RFC 6749 §6), form-encoded. */
function tokenRequest(auth: BoundAuth): VendorRequest {
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: auth.refreshToken });
  if (auth.scope !== undefined) form.set('scope', auth.scope);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (auth.clientAuth === 'basic') {
    // RFC 6749 §2.3.1: both parts form-encoded before they are joined.
    const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(auth.clientId)}:${enc(auth.clientSecret)}`).toString('base64')}`;
  } else {
    form.set('client_id', auth.clientId);
    form.set('client_secret', auth.clientSecret);
  }
  return { method: 'POST', url: auth.tokenUrl, headers, body: form.toString() };
}

export function createTokenSource(options: { clock: Clock; exchange: ExchangeFn }): TokenSource {
  const { clock, exchange } = options;
  // peek, not get, on reads: the entry stored longest ago is forgotten first, however often it is read.
  const cache = new LRUCache<string, Cached>({ max: MAX_CACHED });
  const pending = new Map<string, Promise<TokenResult>>();

  async function fetchToken(auth: BoundAuth, timeoutMs: number): Promise<TokenResult> {
    const sent = await exchange(tokenRequest(auth), {
      timeoutMs,
      keepBody: true,
      maxResponseBytes: MAX_TOKEN_RESPONSE_BYTES,
      secretValues: [auth.clientSecret, auth.refreshToken],
      now: () => clock.now(),
    });
    const read = readAnswer(sent, clock.now(), auth.marginMs);
    if ('ok' in read) return read;
    // A token whose life is shorter than the margin serves the requests waiting for it, but is not kept.
    if (read.expiresAt > clock.now()) cache.set(auth.cacheKey, read);
    return { ok: true, token: read.token };
  }

  return {
    get(auth, timeoutMs) {
      const cached = cache.peek(auth.cacheKey);
      if (cached !== undefined && cached.expiresAt > clock.now()) return Promise.resolve({ ok: true, token: cached.token });
      let running = pending.get(auth.cacheKey);
      if (running === undefined) {
        running = fetchToken(auth, timeoutMs)
          .catch((): TokenResult => failure(true, 'auth_network'))
          .finally(() => pending.delete(auth.cacheKey));
        pending.set(auth.cacheKey, running);
      }
      return running;
    },
    invalidate(auth, token) {
      if (cache.peek(auth.cacheKey)?.token === token) cache.delete(auth.cacheKey);
    },
  };
}

function authorized(req: VendorRequest, token: string): VendorRequest {
  return { ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } };
}

function withToken(options: SendOptions, token: string): SendOptions {
  return { ...options, secretValues: [...(options.secretValues ?? []), token] };
}

/** Read afresh each time (a function, so the compiler does not narrow it between awaits). */
const isAborted = (options: SendOptions): boolean => options.signal?.aborted === true;
const aborted = (): AttemptResult => ({ outcome: { kind: 'network', code: 'ABORTED' }, durationMs: 0, responseBytes: 0, truncated: false });
const noToken = (outcome: AuthOutcome): AttemptResult => ({ outcome, durationMs: 0, responseBytes: 0, truncated: false });

/**
 * The vendor sender with the auth step in front: a destination without `auth` goes straight to
 * `send`; one with it gets a token first, and on a 401 one fresh token and one repeat.
 */
export function withAuth(send: SendFn, tokens: TokenSource): SendFn {
  return async (req, options, destination?: BoundDestination) => {
    const auth = destination?.auth;
    if (auth === undefined) return send(req, options, destination);
    const first = await tokens.get(auth, options.timeoutMs);
    if (isAborted(options)) return aborted();
    if (!first.ok) return noToken(first.outcome);
    const sent = await send(authorized(req, first.token), withToken(options, first.token), destination);
    // 401: the token was revoked or expired early (RFC 6750 §3.1 invalid_token). Once, not in a loop:
    // a second 401 with a fresh token is the vendor's verdict on the credentials.
    if (sent.outcome.kind !== 'response' || sent.outcome.status !== 401 || isAborted(options)) return sent;
    tokens.invalidate(auth, first.token);
    const second = await tokens.get(auth, options.timeoutMs);
    if (isAborted(options)) return aborted();
    if (!second.ok) return noToken(second.outcome);
    return send(authorized(req, second.token), withToken(options, second.token), destination);
  };
}
