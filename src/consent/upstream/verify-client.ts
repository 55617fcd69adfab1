/**
 * Client for an upstream consent-verify API (CookieBoss-compatible; seed
 * cookieboss-consent-verification-api.txt), step 3 of consent resolution (DESIGN.md,
 * "Consent resolution"): asked when a hit carries no consent signal and the store knows nothing.
 *
 * A lookup goes: per-visitor answer cache → single flight (one request per visitor, every
 * waiter gets the same result) → a request slot → brief per-visitor failure memo → upstream "not
 * before" gate (Retry-After, backoff; then one probe) → circuit breaker → request budget (this
 * instance's, or the fleet's in the store) → one GET. This file composes the parts and owns the single flight:
 *
 * | part | file |
 * |---|---|
 * | answer cache (positive / negative TTL, LRU) and failure memo | cache.ts |
 * | request slots (maxConcurrent, maxWaiting) | slots.ts |
 * | gate, breaker and budget, and how an outcome feeds them | admission.ts (gate.ts, circuit-breaker.ts, rate-budget.ts; the fleet's budget fleet-budget.ts) |
 * | one GET over the outbound sender, the body read | transport.ts (verify-url.ts, verify-response.ts) |
 * | options and their checks | verify-options.ts |
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
 * Choices where the brief was silent: after ANY "not before" (Retry-After or backoff) exactly one
 * probe goes out and the rest wait for its answer (gate.ts); how each outcome counts is in
 * admission.ts; a visitor's own call failure is replayed for `failureTtlMs` (cache.ts).
 */
import { VerifyCache } from './cache.ts';
import type { BreakerState } from './circuit-breaker.ts';
import { RequestSlots } from './slots.ts';
import { createVerifyTransport } from './transport.ts';
import { MAX_VISITOR_ID_LENGTH, resolveVerifyOptions, type VerifyClientOptions } from './verify-options.ts';
import type { VerifyAnswer } from './verify-response.ts';
import { fail, type UpstreamReadiness, type VerifyResult } from './verify-result.ts';

export type { VerifyAnswer, CategoryDecision } from './verify-response.ts';
export { isVerifyFailure, type UpstreamReadiness, type VerifyFailure, type VerifyFailureReason, type VerifyResult } from './verify-result.ts';
export { DEFAULT_API_KEY_HEADER, DEFAULT_MAX_BODY_BYTES, MAX_VISITOR_ID_LENGTH, type VerifyClientOptions } from './verify-options.ts';
export { DEFAULT_URL_TEMPLATE, buildVerifyUrl } from './verify-url.ts';

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

export function createVerifyClient(options: VerifyClientOptions): VerifyClient {
  const o = resolveVerifyOptions(options);
  const { clock, admission } = o;
  const cache = new VerifyCache({ maxEntries: o.maxCacheEntries, ttlMs: o.cacheTtlMs, negativeTtlMs: o.negativeCacheTtlMs, failureTtlMs: o.failureTtlMs });
  const slots = new RequestSlots(o.maxConcurrent, o.maxWaiting);
  const transport = createVerifyTransport(o);
  const flights = new Map<string, Flight>();
  let calls = 0;
  let cacheHits = 0;
  let joined = 0;
  let closed = false;

  async function attempt(visitorId: string, flight: Flight): Promise<VerifyResult> {
    if (closed) return fail('closed');
    const slot = slots.acquire();
    if (!(slot === true || (await slot))) return fail('overloaded');
    try {
      return await attemptWithSlot(visitorId, flight);
    } finally {
      slots.release();
    }
  }

  async function attemptWithSlot(visitorId: string, flight: Flight): Promise<VerifyResult> {
    const now = clock.now();
    if (closed) return fail('closed');
    // A chained flight re-checks what may have changed while it waited.
    const known = cache.answer(visitorId, now) ?? cache.failure(visitorId, now);
    if (known !== undefined) return known;
    const admitted = admission.admit(now);
    // Only the fleet's budget answers later (a store round trip); the instance's decides at once.
    const permits = admitted instanceof Promise ? await admitted : admitted;
    if ('failed' in permits) return permits;
    // Closed while the store answered: hand the permits back (a probe must not stay out).
    if (closed) return admission.settle({ kind: 'closed' }, permits, clock.now());

    calls++;
    flight.started = true;
    const exchange = await transport.exchange(visitorId);
    options.onExchange?.(exchange);
    const result = admission.settle(exchange, permits, clock.now());
    // A failure claims nothing, so it passes through; an answer is withheld.
    if (closed) return 'failed' in result ? result : fail('closed');
    if (flight.superseded) return 'failed' in result ? result : fail('superseded');
    if ('failed' in result) cache.storeFailure(visitorId, result, clock.now());
    else cache.storeAnswer(visitorId, result);
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
      return cache.answer(visitorId, clock.now());
    },

    lookup(visitorId) {
      if (closed) return Promise.resolve(fail('closed'));
      if (typeof visitorId !== 'string' || visitorId.length === 0 || visitorId.length > MAX_VISITOR_ID_LENGTH) {
        return Promise.resolve(fail('invalid_visitor'));
      }
      const hit = cache.answer(visitorId, clock.now());
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
      cache.forget(visitorId);
      const flight = flights.get(visitorId);
      // A flight still waiting for its predecessor will send its request after this change.
      if (flight?.started === true) flight.superseded = true;
    },

    stats() {
      const now = clock.now();
      const s: VerifyClientStats = { calls, cacheHits, joined, inFlight: transport.inFlight, breaker: admission.breakerState(now), budgetUsed: admission.budgetUsed(now) };
      const notBefore = admission.notBefore;
      if (notBefore !== undefined) s.notBefore = notBefore;
      return s;
    },

    readiness() {
      return admission.readiness(clock.now());
    },

    async close() {
      closed = true;
      transport.abortAll();
      await Promise.allSettled([...flights.values()].map((f) => f.promise));
    },
  };
}
