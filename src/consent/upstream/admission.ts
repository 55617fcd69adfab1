/**
 * Whether a call may go to the upstream verify API now, and what each call's outcome does to that:
 * the "not before" gate (./gate.ts: Retry-After and backoff, then one probe), the circuit breaker
 * (./circuit-breaker.ts) and the request budget (./rate-budget.ts, or the fleet's:
 * ./fleet-budget.ts), in that order, all per client (one upstream, one API key), not per visitor.
 * Pure but for the fleet's budget, which asks the store: the caller passes `now`.
 *
 * How an outcome feeds them (choices where the brief was silent):
 * - 429 is neutral for the breaker (our rate, not the upstream's health); without a usable
 *   Retry-After it waits `rateLimitFallbackMs` (one 60 s rate window by default).
 * - 5xx, timeouts and network errors count as failures and back off (full jitter on the
 *   consecutive failures, src/lib/backoff.ts). 503 with Retry-After (RFC 9110 §15.6.4) waits the
 *   longer of it and the backoff. Retry-After is honoured exactly, with no upper cap: an absurd
 *   value only keeps this source unresolved, which is the safe direction.
 * - 4xx, other non-200 statuses and malformed bodies count against the breaker (a bad key or a
 *   broken upstream should stop costing calls) but set no backoff: the upstream answered.
 */
import { fullJitterBackoffMs, type BackoffOptions } from '../../lib/backoff.ts';
import { parseRetryAfter } from '../../lib/retry-after.ts';
import { CircuitBreaker, type BreakerOptions, type BreakerOutcome, type BreakerPermit, type BreakerState } from './circuit-breaker.ts';
import { UpstreamGate, type GateReason, type GateTicket } from './gate.ts';
import { SlidingWindowBudget, type RequestBudget } from './rate-budget.ts';
import type { Exchange } from './transport.ts';
import { fail, type UpstreamReadiness, type VerifyFailure, type VerifyResult } from './verify-result.ts';

export interface AdmissionOptions {
  /** The plan's rate; never exceeded in any sliding 60 s window. */
  requestsPerMinute: number;
  breaker: BreakerOptions;
  backoff: BackoffOptions;
  /** Wait after a 429 without a usable Retry-After. */
  rateLimitFallbackMs: number;
  /** Uniform in [0, 1), for the backoff jitter. */
  random: () => number;
  /**
   * The budget calls are taken from; default this instance's own sliding window of
   * `requestsPerMinute` (the fleet's: ./fleet-budget.ts, whose limit is the same plan rate).
   */
  budget?: RequestBudget;
}

/** Taken by `admit`, handed back to `settle`. */
export interface Permits {
  readonly gate: GateTicket;
  readonly breaker: BreakerPermit;
}

export class UpstreamAdmission {
  readonly #gate = new UpstreamGate();
  readonly #breaker: CircuitBreaker;
  readonly #budget: RequestBudget;
  readonly #o: AdmissionOptions;
  #consecutiveFailures = 0;

  /** Throws RangeError for budget or breaker settings out of range. */
  constructor(options: AdmissionOptions) {
    this.#o = options;
    this.#budget = options.budget ?? new SlidingWindowBudget(options.requestsPerMinute);
    this.#breaker = new CircuitBreaker(options.breaker);
  }

  /**
   * The gates in order; nothing is taken unless every one admits. Synchronous with this
   * instance's budget; a promise with the fleet's, after which the gate and the breaker are asked
   * again (another lookup may have taken the probe meanwhile): a grant then refused is spent
   * without a call, the safe direction.
   */
  admit(now: number): Permits | VerifyFailure | Promise<Permits | VerifyFailure> {
    const before = this.#checkGates(now);
    if ('failed' in before) return before;
    const taken = this.#budget.tryTake(now);
    if (typeof taken === 'boolean') return taken ? this.#acquire(before) : this.#refusal(false, now);
    return taken.then((t) => {
      if (t !== true) return this.#refusal(t, now);
      const after = this.#checkGates(now);
      return 'failed' in after ? after : this.#acquire(after);
    });
  }

  #checkGates(now: number): { gate: boolean; breaker: boolean } | VerifyFailure {
    const g = this.#gate.check(now);
    if (!g.ok) return fail(g.reason, g.retryAt);
    const b = this.#breaker.check(now);
    if (!b.ok) return fail('circuit_open', b.retryAt);
    return { gate: g.probe, breaker: b.probe };
  }

  #acquire(probes: { gate: boolean; breaker: boolean }): Permits {
    return { gate: this.#gate.acquire(probes.gate), breaker: this.#breaker.acquire(probes.breaker) };
  }

  #refusal(taken: false | 'unavailable', now: number): VerifyFailure {
    return fail(taken === 'unavailable' ? 'budget_unavailable' : 'budget_exhausted', this.#budget.nextAvailableAt(now));
  }

  /** Feeds one call's outcome to the gate, breaker and backoff; returns the lookup's result. */
  settle(x: Exchange, permits: Permits, now: number): VerifyResult {
    if (x.kind === 'closed') {
      this.#breaker.record(permits.breaker, 'neutral', now);
      this.#gate.complete(permits.gate, { aborted: true });
      return fail('closed');
    }
    const { health, defer, result } = this.#judge(x, now);
    this.#breaker.record(permits.breaker, health, now);
    this.#gate.complete(permits.gate, defer === undefined ? {} : { defer });
    return result;
  }

  #judge(x: Exclude<Exchange, { kind: 'closed' }>, now: number): { health: BreakerOutcome; defer?: { until: number; reason: GateReason }; result: VerifyResult } {
    const backOff = (): number => now + fullJitterBackoffMs(++this.#consecutiveFailures, this.#o.backoff, this.#o.random);
    switch (x.kind) {
      case 'answer':
        this.#consecutiveFailures = 0;
        return { health: 'success', result: x.answer };
      case 'malformed':
        // The upstream is up but answers nonsense: a backoff would not make the next body any better.
        return { health: 'failure', result: fail('malformed') };
      case 'timeout':
      case 'network': {
        const defer = { until: backOff(), reason: 'backing_off' as const };
        return { health: 'failure', defer, result: fail(x.kind, defer.until) };
      }
      case 'status': {
        const wait = x.retryAfter === undefined ? undefined : parseRetryAfter(x.retryAfter, now);
        if (x.status === 429) {
          const defer = { until: now + (wait ?? this.#o.rateLimitFallbackMs), reason: 'rate_limited' as const };
          return { health: 'neutral', defer, result: fail('rate_limited', defer.until) };
        }
        if (x.status >= 500) {
          const until = backOff();
          const defer: { until: number; reason: GateReason } =
            x.status === 503 && wait !== undefined ? { until: Math.max(until, now + wait), reason: 'rate_limited' } : { until, reason: 'backing_off' };
          return { health: 'failure', defer, result: fail('http_error', defer.until) };
        }
        // 3xx (never followed: the API does not redirect), 4xx (bad key, unknown site), other 2xx.
        this.#consecutiveFailures = 0;
        return { health: 'failure', result: fail('http_error') };
      }
    }
  }

  /** When a call may next go out; reads the gates without taking anything. */
  readiness(now: number): UpstreamReadiness {
    const g = this.#gate.check(now);
    const b = this.#breaker.check(now);
    // A gate or circuit whose probe is out has no time to give: its answer decides.
    if ((!g.ok && g.retryAt === undefined) || (!b.ok && b.retryAt === undefined)) return { readyAt: undefined, probe: false, room: 0 };
    const readyAt = Math.max(now, g.ok ? now : g.retryAt!, b.ok ? now : b.retryAt!, this.#budget.nextAvailableAt(now));
    const probe = !g.ok || g.probe || !b.ok || b.probe;
    // Read at `now` only: the budget clamps its clock forward, so asking about a later time would move it.
    return { readyAt, probe, room: this.#budget.limit - this.#budget.used(now) };
  }

  breakerState(now: number): BreakerState {
    return this.#breaker.state(now);
  }

  /** The gate's "not before", while it is closed. */
  get notBefore(): number | undefined {
    return this.#gate.notBefore;
  }

  /** Calls granted in the current 60 s window. */
  budgetUsed(now: number): number {
    return this.#budget.used(now);
  }
}
