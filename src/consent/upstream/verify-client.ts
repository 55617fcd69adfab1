/**
 * Client for an upstream consent-verify API (CookieBoss-compatible; seed
 * cookieboss-consent-verification-api.txt), step 3 of consent resolution (DESIGN.md,
 * "Consent resolution"): asked when a hit carries no consent signal and the store knows nothing.
 *
 * A lookup goes: per-visitor answer cache → single flight (one request per visitor, every
 * waiter gets the same result) → brief per-visitor failure memo → upstream "not before" gate
 * (Retry-After, backoff; then one probe) → circuit breaker → request budget → one GET.
 *
 * Failures are values, never exceptions, and never consent: an error, a 429, an open circuit, a
 * timeout, a malformed body or a cache miss is a `VerifyFailure` (or `undefined` from `cached`),
 * which the resolver reads as "unresolved". Only an `interpretVerifyBody` answer from a 200 can
 * carry `granted`.
 *
 * Revocation wins: `invalidate(visitorId)` (called whenever consent for the visitor is written
 * locally) drops the cached answer and supersedes a fetch already on the wire, whose answer may
 * predate the local write: that answer is not cached, and its waiters get
 * `{ failed: 'superseded' }` (re-resolve; the local store now knows better). Failures of a
 * superseded fetch pass through unchanged (they claim nothing). A lookup arriving after the
 * invalidation waits for the old request to finish and then makes its own, so there is still only
 * one request per visitor on the wire. The "epoch" is kept as a flag on the in-flight entry
 * rather than a counter per visitor, so it costs no memory for visitors with nothing in flight.
 *
 * Choices where the brief was silent:
 * - After ANY "not before" (Retry-After or backoff) exactly one probe goes out; the rest wait
 *   for its answer (see retry-after.ts). Retry-After is honoured exactly, with no upper cap:
 *   an absurd value only keeps this source unresolved, which is the safe direction.
 * - 429 is neutral for the breaker (our rate, not the upstream's health); without a usable
 *   Retry-After it waits `rateLimitFallbackMs` (default: one 60 s rate window). 503 with
 *   Retry-After waits the longer of it and the backoff, and counts as a failure.
 * - 4xx, other non-200 statuses and malformed bodies count against the breaker (a bad key or
 *   a broken upstream should stop costing calls) but set no backoff: the upstream answered.
 * - A visitor's own call failure is replayed for `failureTtlMs` (default 1 s) so one visitor's
 *   burst of events cannot turn into a burst of calls; gate refusals are never memoised.
 * - Budget, breaker and gate are per client (one upstream, one API key), not per visitor.
 */
import { request, type Dispatcher } from 'undici';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../../errors.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { fullJitterBackoffMs, type BackoffOptions } from '../../lib/backoff.ts';
import { CircuitBreaker, type BreakerOptions, type BreakerOutcome, type BreakerPermit, type BreakerState } from './circuit-breaker.ts';
import { SlidingWindowBudget } from './rate-budget.ts';
import { UpstreamGate, type GateReason, type GateTicket } from './retry-after.ts';
import { retryAfterMs } from '../../lib/retry-after.ts';
import { interpretVerifyBody, type VerifyAnswer } from './verify-response.ts';

export type { VerifyAnswer, CategoryDecision } from './verify-response.ts';

export type VerifyFailureReason =
  /** The upstream asked us to wait (429 / 503 with Retry-After) or its probe is out. */
  | 'rate_limited'
  /** Our own request budget has no room in the current 60 s window; no call made. */
  | 'budget_exhausted'
  /** `maxConcurrent` requests are out and `maxWaiting` lookups already wait for a slot; no call made. */
  | 'overloaded'
  | 'circuit_open'
  /** Backing off after a 5xx, timeout or network error (or the probe after it is out). */
  | 'backing_off'
  | 'timeout'
  | 'network'
  /** Any status but 200 (a 429 reads as rate_limited). */
  | 'http_error'
  /** A 200 whose body is too large, not UTF-8, not JSON or not the documented shape. */
  | 'malformed'
  /** The answer was fetched before a local consent change: not cached, re-resolve. */
  | 'superseded'
  /** Empty or over-long visitor id: no call made. */
  | 'invalid_visitor'
  /** The client was closed. */
  | 'closed';

export interface VerifyFailure {
  readonly failed: VerifyFailureReason;
  /**
   * The earliest time a new lookup may get further, when known: for fast-fail reasons, and for a
   * call that set a wait (a 5xx, a timeout, a network error: the backoff or the 503's
   * Retry-After). Absent after a 4xx or a malformed body: the upstream answered and asked for no wait.
   */
  readonly retryAt?: number;
}

/**
 * When the upstream may next be called, as the client's own gates see it (Retry-After or
 * backoff, circuit breaker, request budget), for callers that keep work waiting for it (held
 * events, src/consent/held-retry.ts) instead of deriving the window again.
 */
export interface UpstreamReadiness {
  /**
   * Earliest time a call may go out (`now` or earlier: now). Undefined while a probe is out (after
   * a Retry-After or backoff, or in a half-open circuit): nobody knows until it answers.
   */
  readonly readyAt: number | undefined;
  /** The next call that goes out is that single probe. */
  readonly probe: boolean;
  /** Calls the request budget would grant now (read it again at `readyAt` when that is later). */
  readonly room: number;
}

export type VerifyResult = VerifyAnswer | VerifyFailure;

export function isVerifyFailure(r: VerifyResult): r is VerifyFailure {
  return 'failed' in r;
}

export const DEFAULT_URL_TEMPLATE = '{base}/api/v1/public/sites/{siteId}/consent/verify?visitor_id={visitorId}';
export const DEFAULT_API_KEY_HEADER = 'X-API-Key';
/** The documented body is ~150 bytes; 16 KiB leaves room for extra fields and bounds memory. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;
/** Longest visitor id sent upstream (identity caps ids at 128 by default). */
export const MAX_VISITOR_ID_LENGTH = 512;

export interface VerifyClientOptions {
  /** Placeholders: `{base}` (raw), `{siteId}` and `{visitorId}` (URL-encoded). Default DEFAULT_URL_TEMPLATE. */
  urlTemplate?: string;
  /** Substituted for `{base}`, trailing slashes removed; required when the template has `{base}`. */
  baseUrl?: string;
  siteId: string;
  apiKey: string;
  /** Default `X-API-Key` (the seed's "Authentication"). */
  apiKeyHeader?: string;
  /** Upstream category name → site category, e.g. `{ marketing: 'advertising', analytics: 'analytics' }`. */
  categoryMap: Readonly<Record<string, string>>;
  /** The plan's rate (100 / 500 / 1,000); never exceeded in any sliding 60 s window. */
  requestsPerMinute: number;
  /** TTL of an answer with consent data. */
  cacheTtlMs: number;
  /** TTL of "no consent found" (shorter: the visitor may answer the banner any moment). */
  negativeCacheTtlMs: number;
  /** LRU bound on cached answers (and, separately, on memoised failures). */
  maxCacheEntries: number;
  /** Whole exchange: connect, headers and body. Counted from when the request gets a slot. */
  timeoutMs: number;
  /**
   * Most requests on the wire at once (default 32); size the dispatcher's connections to match.
   * Lookups beyond it wait for a slot without a timer running: a timeout must mean the upstream
   * was slow, not that our own queue was long (which would back off and starve every visitor).
   */
  maxConcurrent?: number;
  /** Most lookups waiting for a slot (default 10,000); beyond it a lookup fails at once (`overloaded`). */
  maxWaiting?: number;
  maxBodyBytes?: number;
  backoff: BackoffOptions;
  breaker: BreakerOptions;
  /**
   * How long a visitor's own call failure (timeout, network, http_error, malformed) is replayed
   * without a new call. Default 1000 ms; 0 disables. Never an answer, never consent.
   */
  failureTtlMs?: number;
  /** Wait after a 429 without a usable Retry-After. Default 60 000 ms: the plan's rate window. */
  rateLimitFallbackMs?: number;
  /** Owned by the caller: `close()` does not close it. */
  dispatcher: Dispatcher;
  /** Time and timers (the request timeout). Default: the system clock. */
  clock?: Clock;
  /** Uniform in [0, 1), for the backoff jitter. Default Math.random. */
  random?: () => number;
}

export interface VerifyClientStats {
  /** Requests sent upstream. */
  calls: number;
  cacheHits: number;
  /** Lookups that joined a request already in flight for the same visitor. */
  joined: number;
  /** Requests on the wire now. */
  inFlight: number;
  breaker: BreakerState;
  /** The upstream gate's "not before", while it is closed. */
  notBefore?: number;
  /** Calls granted in the current 60 s window. */
  budgetUsed: number;
}

export interface VerifyClient {
  /** Synchronous cache read, no I/O. Undefined is a miss, never consent. */
  cached(visitorId: string): VerifyAnswer | undefined;
  /** Cache, single flight, gates, budget, one call. Never rejects. */
  lookup(visitorId: string): Promise<VerifyResult>;
  /** Revocation wins: drop the cached answer, supersede a fetch in flight. */
  invalidate(visitorId: string): void;
  stats(): VerifyClientStats;
  /** When a lookup may next reach the upstream (no call is made, nothing is taken). */
  readiness(): UpstreamReadiness;
  /** Aborts requests in flight (their lookups get `closed`) and refuses new ones. */
  close(): Promise<void>;
}

interface Flight {
  promise: Promise<VerifyResult>;
  /** The request is on the wire (a chained flight is still waiting for its predecessor). */
  started: boolean;
  /** A local consent change happened while the request was on the wire. */
  superseded: boolean;
}

interface CacheEntry {
  answer: VerifyAnswer;
  expiresAt: number;
}

interface FailureEntry {
  failure: VerifyFailure;
  expiresAt: number;
}

/** What one HTTP exchange produced, before interpretation. */
type Exchange =
  | { kind: 'ok'; body: Buffer }
  | { kind: 'too_large' }
  | { kind: 'status'; status: number; retryAfter: string | string[] | undefined }
  | { kind: 'timeout' }
  | { kind: 'network' }
  | { kind: 'closed' };

/** Abort reasons, told apart by identity. */
const TIMEOUT = Symbol('verify-timeout');
const CLOSED = Symbol('verify-closed');
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** An HTTP field name (RFC 9110 §5.1, token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function fail(failed: VerifyFailureReason, retryAt?: number): VerifyFailure {
  return retryAt === undefined ? { failed } : { failed, retryAt };
}

/**
 * Drops a response body unread. Destroying an undici body emits an 'error' (RequestAbortedError)
 * that nobody else listens to; unheard, it would surface as an uncaught exception. Costs the
 * socket its keep-alive, which is fine for the abnormal responses this is used for.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** JSON is UTF-8 (RFC 8259 §8.1); invalid bytes make the body malformed rather than U+FFFD. */
function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function nonNegative(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`upstream verify: ${name} must be a finite number >= 0`);
  return v;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(`upstream verify: ${name} must be an integer >= 1`);
  return v;
}

/**
 * Fills the URL template. Values are substituted in one pass, so a visitor id containing
 * "{siteId}" cannot be expanded again; site and visitor ids are percent-encoded
 * (encodeURIComponent) so an id cannot add path segments or query parameters.
 */
export function buildVerifyUrl(template: string, values: { base?: string; siteId: string; visitorId: string }): string {
  return template.replace(/\{(base|siteId|visitorId)\}/g, (_m, name: string) => {
    if (name === 'base') return (values.base ?? '').replace(/\/+$/, '');
    return encodeURIComponent(name === 'siteId' ? values.siteId : values.visitorId);
  });
}

export function createVerifyClient(o: VerifyClientOptions): VerifyClient {
  const template = o.urlTemplate ?? DEFAULT_URL_TEMPLATE;
  if (!template.includes('{visitorId}')) throw new ConfigError('upstream verify: urlTemplate must contain {visitorId}');
  if (template.includes('{base}') && (o.baseUrl === undefined || o.baseUrl === '')) {
    throw new ConfigError('upstream verify: urlTemplate uses {base} but baseUrl is not set');
  }
  let probeUrl: URL;
  try {
    probeUrl = new URL(buildVerifyUrl(template, { base: o.baseUrl, siteId: o.siteId, visitorId: 'v' }));
  } catch {
    throw new ConfigError('upstream verify: urlTemplate does not make a valid URL');
  }
  if (probeUrl.protocol !== 'https:' && probeUrl.protocol !== 'http:') throw new ConfigError('upstream verify: URL must be http(s)');
  const apiKeyHeader = o.apiKeyHeader ?? DEFAULT_API_KEY_HEADER;
  if (!TOKEN.test(apiKeyHeader)) throw new ConfigError('upstream verify: apiKeyHeader is not a valid header name');
  if (typeof o.apiKey !== 'string' || o.apiKey === '') throw new ConfigError('upstream verify: apiKey is required');
  for (const [k, v] of Object.entries(o.categoryMap)) {
    if (typeof v !== 'string' || v === '') throw new ConfigError(`upstream verify: categoryMap.${k} must name a site category`);
  }
  const cacheTtlMs = nonNegative('cacheTtlMs', o.cacheTtlMs);
  const negativeCacheTtlMs = nonNegative('negativeCacheTtlMs', o.negativeCacheTtlMs);
  const failureTtlMs = nonNegative('failureTtlMs', o.failureTtlMs ?? 1_000);
  const rateLimitFallbackMs = nonNegative('rateLimitFallbackMs', o.rateLimitFallbackMs ?? 60_000);
  const timeoutMs = nonNegative('timeoutMs', o.timeoutMs);
  if (timeoutMs === 0) throw new ConfigError('upstream verify: timeoutMs must be > 0');
  const maxBodyBytes = positiveInt('maxBodyBytes', o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  const maxCacheEntries = positiveInt('maxCacheEntries', o.maxCacheEntries);
  const backoff: BackoffOptions = { baseMs: nonNegative('backoff.baseMs', o.backoff.baseMs), maxMs: nonNegative('backoff.maxMs', o.backoff.maxMs) };

  let budget: SlidingWindowBudget;
  let breaker: CircuitBreaker;
  try {
    budget = new SlidingWindowBudget(positiveInt('requestsPerMinute', o.requestsPerMinute));
    breaker = new CircuitBreaker(o.breaker);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`upstream verify: ${(err as Error).message}`);
  }

  const clock = o.clock ?? systemClock;
  const random = o.random ?? Math.random;
  const categoryMap = { ...o.categoryMap };
  const headers: Record<string, string> = { [apiKeyHeader.toLowerCase()]: o.apiKey, accept: 'application/json' };
  const gate = new UpstreamGate();

  // Expiry is checked against the injected clock on read; the LRU only bounds the size.
  const cache = new LRUCache<string, CacheEntry>({ max: maxCacheEntries });
  const failures = new LRUCache<string, FailureEntry>({ max: maxCacheEntries });
  const flights = new Map<string, Flight>();
  const controllers = new Set<AbortController>();
  let consecutiveFailures = 0;
  let calls = 0;
  let cacheHits = 0;
  let joined = 0;
  let closed = false;

  function cachedAt(visitorId: string, now: number): VerifyAnswer | undefined {
    const entry = cache.get(visitorId);
    if (entry === undefined) return undefined;
    if (now >= entry.expiresAt) {
      cache.delete(visitorId);
      return undefined;
    }
    return entry.answer;
  }

  function memoisedFailure(visitorId: string, now: number): VerifyFailure | undefined {
    const entry = failures.get(visitorId);
    if (entry === undefined) return undefined;
    if (now >= entry.expiresAt) {
      failures.delete(visitorId);
      return undefined;
    }
    // Replayed, a failure that set a wait says when THIS visitor may get further: not before the
    // memo ends (its own retryAt may have passed already). One that set none (4xx) still sets none.
    const { failure } = entry;
    return failure.retryAt === undefined || failure.retryAt >= entry.expiresAt ? failure : fail(failure.failed, entry.expiresAt);
  }

  /** The gates, in order; all synchronous, and nothing is taken unless every one admits. */
  function admit(now: number): { gate: GateTicket; breaker: BreakerPermit } | VerifyFailure {
    const g = gate.check(now);
    if (!g.ok) return fail(g.reason, g.retryAt);
    const b = breaker.check(now);
    if (!b.ok) return fail('circuit_open', b.retryAt);
    if (!budget.tryTake(now)) return fail('budget_exhausted', budget.nextAvailableAt(now));
    return { gate: gate.acquire(g.probe), breaker: breaker.acquire(b.probe) };
  }

  async function exchange(visitorId: string): Promise<Exchange> {
    const url = buildVerifyUrl(template, { base: o.baseUrl, siteId: o.siteId, visitorId });
    const controller = new AbortController();
    controllers.add(controller);
    const timer = clock.setTimeout(() => controller.abort(TIMEOUT), timeoutMs);
    try {
      const res = await request(url, {
        dispatcher: o.dispatcher,
        method: 'GET',
        headers,
        signal: controller.signal,
        // Backstops for the clock's timer (which a fake clock in tests may never fire).
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      if (res.statusCode !== 200) {
        // Only the status and Retry-After matter; drop the body without buffering it.
        discard(res.body);
        return { kind: 'status', status: res.statusCode, retryAfter: res.headers['retry-after'] };
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBodyBytes) {
        discard(res.body);
        return { kind: 'too_large' };
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > maxBodyBytes) {
          discard(res.body);
          return { kind: 'too_large' };
        }
        chunks.push(buf);
      }
      return { kind: 'ok', body: Buffer.concat(chunks, size) };
    } catch (err) {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason === CLOSED) return { kind: 'closed' };
      if (controller.signal.aborted && reason === TIMEOUT) return { kind: 'timeout' };
      const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
      const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
      if (e?.name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code))) return { kind: 'timeout' };
      return { kind: 'network' };
    } finally {
      clock.clearTimeout(timer);
      controllers.delete(controller);
    }
  }

  /** Feeds the outcome to the gate, breaker and backoff; returns the lookup's result. */
  function settle(x: Exchange, permits: { gate: GateTicket; breaker: BreakerPermit }): VerifyResult {
    const now = clock.now();
    let health: BreakerOutcome;
    let defer: { until: number; reason: GateReason } | undefined;
    let result: VerifyResult;
    const backOff = (): number => {
      consecutiveFailures++;
      return now + fullJitterBackoffMs(consecutiveFailures, backoff, random);
    };
    switch (x.kind) {
      case 'ok': {
        const text = decodeUtf8(x.body);
        const answer = text === undefined ? undefined : interpretVerifyBody(text, categoryMap, now);
        if (answer === undefined) {
          // The upstream is up but answers nonsense: count it against the breaker, but a
          // backoff would not make the next body any better.
          health = 'failure';
          result = fail('malformed');
        } else {
          health = 'success';
          consecutiveFailures = 0;
          result = answer;
        }
        break;
      }
      case 'too_large':
        health = 'failure';
        result = fail('malformed');
        break;
      case 'status': {
        const wait = retryAfterMs(x.retryAfter, now);
        if (x.status === 429) {
          // Our rate, not the upstream's health: neutral for the breaker. Without a usable
          // Retry-After we wait out one whole window of the plan's per-minute rate.
          health = 'neutral';
          defer = { until: now + (wait ?? rateLimitFallbackMs), reason: 'rate_limited' };
          result = fail('rate_limited', defer.until);
        } else if (x.status >= 500) {
          health = 'failure';
          const until = backOff();
          // 503 + Retry-After (RFC 9110 §15.6.4): the server's own estimate, honoured exactly;
          // the backoff still applies when it is longer.
          defer =
            x.status === 503 && wait !== undefined
              ? { until: Math.max(until, now + wait), reason: 'rate_limited' }
              : { until, reason: 'backing_off' };
          result = fail('http_error', defer.until);
        } else {
          // 3xx (never followed: the API does not redirect), 4xx (bad key, unknown site), other 2xx.
          health = 'failure';
          consecutiveFailures = 0;
          result = fail('http_error');
        }
        break;
      }
      case 'timeout':
        health = 'failure';
        defer = { until: backOff(), reason: 'backing_off' };
        result = fail('timeout', defer.until);
        break;
      case 'network':
        health = 'failure';
        defer = { until: backOff(), reason: 'backing_off' };
        result = fail('network', defer.until);
        break;
      case 'closed':
        breaker.record(permits.breaker, 'neutral', now);
        gate.complete(permits.gate, { aborted: true });
        return fail('closed');
    }
    breaker.record(permits.breaker, health, now);
    gate.complete(permits.gate, defer === undefined ? {} : { defer });
    return result;
  }

  const maxConcurrent = o.maxConcurrent ?? 32;
  const maxWaiting = o.maxWaiting ?? 10_000;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new ConfigError('upstream verify: maxConcurrent must be an integer >= 1');
  if (!Number.isInteger(maxWaiting) || maxWaiting < 0) throw new ConfigError('upstream verify: maxWaiting must be an integer >= 0');
  let active = 0;
  const waiting: (() => void)[] = [];

  /** A slot for one request, FIFO; false when too many already wait. */
  function acquireSlot(): Promise<boolean> | boolean {
    if (active < maxConcurrent) {
      active++;
      return true;
    }
    if (waiting.length >= maxWaiting) return false;
    return new Promise<boolean>((resolve) => waiting.push(() => resolve(true)));
  }

  function releaseSlot(): void {
    const next = waiting.shift();
    // The slot passes straight to the next waiter: `active` stays as it is.
    if (next !== undefined) next();
    else active--;
  }

  async function attempt(visitorId: string, flight: Flight): Promise<VerifyResult> {
    if (closed) return fail('closed');
    const slot = acquireSlot();
    if (!(slot === true || (await slot))) return fail('overloaded');
    try {
      return await attemptWithSlot(visitorId, flight);
    } finally {
      releaseSlot();
    }
  }

  async function attemptWithSlot(visitorId: string, flight: Flight): Promise<VerifyResult> {
    const now = clock.now();
    if (closed) return fail('closed');
    // A chained flight re-checks what may have changed while it waited.
    const hit = cachedAt(visitorId, now);
    if (hit !== undefined) return hit;
    const memo = memoisedFailure(visitorId, now);
    if (memo !== undefined) return memo;
    const permits = admit(now);
    if ('failed' in permits) return permits;

    calls++;
    flight.started = true;
    const x = await exchange(visitorId);
    const result = settle(x, permits);
    // A failure claims nothing, so it passes through; an answer is withheld.
    if (closed) return 'failed' in result ? result : fail('closed');
    if (flight.superseded) return 'failed' in result ? result : fail('superseded');
    if ('failed' in result) {
      if (failureTtlMs > 0 && result.failed !== 'rate_limited' && result.failed !== 'closed') {
        failures.set(visitorId, { failure: result, expiresAt: clock.now() + failureTtlMs });
      }
      return result;
    }
    const ttl = result.found ? cacheTtlMs : negativeCacheTtlMs;
    if (ttl > 0) cache.set(visitorId, { answer: result, expiresAt: result.fetchedAt + ttl });
    return result;
  }

  function startFlight(visitorId: string, after: Promise<unknown> | undefined): Flight {
    const flight: Flight = { promise: Promise.resolve(fail('closed')), started: false, superseded: false };
    // In the map before the body runs: a lookup that fails fast runs its `finally` synchronously.
    flights.set(visitorId, flight);
    flight.promise = (async () => {
      try {
        if (after !== undefined) await after;
        return await attempt(visitorId, flight);
      } finally {
        if (flights.get(visitorId) === flight) flights.delete(visitorId);
      }
    })();
    return flight;
  }

  return {
    cached(visitorId) {
      return cachedAt(visitorId, clock.now());
    },

    lookup(visitorId) {
      if (closed) return Promise.resolve(fail('closed'));
      if (typeof visitorId !== 'string' || visitorId.length === 0 || visitorId.length > MAX_VISITOR_ID_LENGTH) {
        return Promise.resolve(fail('invalid_visitor'));
      }
      const hit = cachedAt(visitorId, clock.now());
      if (hit !== undefined) {
        cacheHits++;
        return Promise.resolve(hit);
      }
      const current = flights.get(visitorId);
      if (current !== undefined && !current.superseded) {
        joined++;
        return current.promise;
      }
      // After an invalidation the old request may still be on the wire: queue behind it.
      return startFlight(visitorId, current?.promise).promise;
    },

    invalidate(visitorId) {
      cache.delete(visitorId);
      failures.delete(visitorId);
      const flight = flights.get(visitorId);
      // A flight still waiting for its predecessor will send its request after this change.
      if (flight?.started === true) flight.superseded = true;
    },

    stats() {
      const now = clock.now();
      const s: VerifyClientStats = {
        calls,
        cacheHits,
        joined,
        inFlight: controllers.size,
        breaker: breaker.state(now),
        budgetUsed: budget.used(now),
      };
      const notBefore = gate.notBefore;
      if (notBefore !== undefined) s.notBefore = notBefore;
      return s;
    },

    readiness() {
      const now = clock.now();
      const g = gate.check(now);
      const b = breaker.check(now);
      // A gate or circuit whose probe is out has no time to give: its answer decides.
      if ((!g.ok && g.retryAt === undefined) || (!b.ok && b.retryAt === undefined)) return { readyAt: undefined, probe: false, room: 0 };
      const readyAt = Math.max(now, g.ok ? now : g.retryAt!, b.ok ? now : b.retryAt!, budget.nextAvailableAt(now));
      const probe = !g.ok || g.probe || !b.ok || b.probe;
      // Read at `now` only: the budget clamps its clock forward, so asking about a later time would move it.
      return { readyAt, probe, room: budget.limit - budget.used(now) };
    },

    async close() {
      closed = true;
      for (const c of controllers) c.abort(CLOSED);
      await Promise.allSettled([...flights.values()].map((f) => f.promise));
    },
  };
}
