import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../lib/fake-clock.ts';
import { UpstreamAdmission, type AdmissionOptions, type Permits } from './admission.ts';
import type { Exchange } from './transport.ts';
import type { VerifyAnswer } from './verify-response.ts';

const ANSWER: VerifyAnswer = { found: true, categories: { analytics: 'granted' }, fetchedAt: 0 };

function setup(over: Partial<AdmissionOptions> = {}) {
  const clock = new FakeClock();
  const a = new UpstreamAdmission({
    requestsPerMinute: 1_000,
    breaker: { windowMs: 60_000, minRequests: 3, errorRatio: 0.5, openMs: 30_000 },
    backoff: { baseMs: 100, maxMs: 10_000 },
    rateLimitFallbackMs: 60_000,
    random: () => 0.5,
    ...over,
  });
  /** One call through the gates, ended by `x` at the clock's time. */
  const call = (x: Exchange) => {
    const p = a.admit(clock.now());
    // This instance's own budget: admit decides synchronously.
    if (p instanceof Promise) throw new Error('admit answered later');
    if ('failed' in p) throw new Error(`not admitted: ${p.failed}`);
    return a.settle(x, p, clock.now());
  };
  return { clock, a, call };
}

describe('UpstreamAdmission: admit', () => {
  it('takes from the budget only when every gate admits; an exhausted budget says when it has room', () => {
    const { clock, a } = setup({ requestsPerMinute: 2 });
    const t0 = clock.now();
    expect('failed' in a.admit(t0)).toBe(false);
    expect('failed' in a.admit(t0)).toBe(false);
    expect(a.admit(t0)).toEqual({ failed: 'budget_exhausted', retryAt: t0 + 60_000 });
    expect(a.budgetUsed(t0)).toBe(2);
    clock.advance(60_000);
    expect('failed' in a.admit(clock.now())).toBe(false);
  });

  it('a closed gate refuses without taking from the budget', () => {
    const { clock, a, call } = setup({ requestsPerMinute: 5 });
    call({ kind: 'status', status: 429, retryAfter: '10' });
    expect(a.admit(clock.now())).toEqual({ failed: 'rate_limited', retryAt: clock.now() + 10_000 });
    expect(a.budgetUsed(clock.now())).toBe(1);
  });

  it('throws RangeError for settings out of range', () => {
    expect(() => setup({ requestsPerMinute: 0 })).toThrow(RangeError);
    expect(() => setup({ breaker: { windowMs: 1, minRequests: 1, errorRatio: 2, openMs: 1 } })).toThrow(RangeError);
  });
});

describe('UpstreamAdmission: settle', () => {
  it('an answer is the result, and sets no wait', () => {
    const { a, call } = setup();
    expect(call({ kind: 'answer', answer: ANSWER })).toBe(ANSWER);
    expect(a.notBefore).toBeUndefined();
  });

  it('5xx, timeouts and network errors back off with full jitter; consecutive failures double the ceiling', () => {
    const { clock, a, call } = setup({ breaker: { windowMs: 60_000, minRequests: 100, errorRatio: 1, openMs: 1 } });
    const t0 = clock.now();
    expect(call({ kind: 'status', status: 500 })).toEqual({ failed: 'http_error', retryAt: t0 + 50 });
    expect(a.admit(t0)).toEqual({ failed: 'backing_off', retryAt: t0 + 50 });
    clock.advance(50);
    expect(call({ kind: 'timeout' })).toEqual({ failed: 'timeout', retryAt: clock.now() + 100 });
    clock.advance(100);
    expect(call({ kind: 'network' })).toEqual({ failed: 'network', retryAt: clock.now() + 200 });
    clock.advance(200);
    // The probe's answer opens the gate and resets the count.
    call({ kind: 'answer', answer: ANSWER });
    expect(call({ kind: 'status', status: 502 })).toEqual({ failed: 'http_error', retryAt: clock.now() + 50 });
  });

  it('503 with Retry-After waits the longer of it and the backoff, as rate_limited', () => {
    const { clock, a, call } = setup();
    expect(call({ kind: 'status', status: 503, retryAfter: '5' })).toEqual({ failed: 'http_error', retryAt: clock.now() + 5_000 });
    expect(a.admit(clock.now() + 4_999)).toEqual({ failed: 'rate_limited', retryAt: clock.now() + 5_000 });
  });

  it('429: neutral for the breaker, waits its Retry-After (or the fallback without a usable one)', () => {
    const { clock, a, call } = setup();
    expect(call({ kind: 'status', status: 429, retryAfter: 'soon' })).toEqual({ failed: 'rate_limited', retryAt: clock.now() + 60_000 });
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      call({ kind: 'status', status: 429 });
    }
    expect(a.breakerState(clock.now())).toBe('closed');
  });

  it('4xx and malformed bodies count against the breaker but set no wait', () => {
    const { clock, a, call } = setup();
    expect(call({ kind: 'status', status: 401 })).toEqual({ failed: 'http_error' });
    expect(call({ kind: 'malformed' })).toEqual({ failed: 'malformed' });
    expect(a.notBefore).toBeUndefined();
    expect(call({ kind: 'status', status: 404 })).toEqual({ failed: 'http_error' });
    // Three failures out of three: the breaker opens.
    expect(a.breakerState(clock.now())).toBe('open');
    expect(a.admit(clock.now())).toEqual({ failed: 'circuit_open', retryAt: clock.now() + 30_000 });
  });

  it('a 4xx resets the backoff: the upstream answered', () => {
    const { clock, call } = setup({ breaker: { windowMs: 60_000, minRequests: 100, errorRatio: 1, openMs: 1 } });
    call({ kind: 'status', status: 500 });
    clock.advance(50);
    call({ kind: 'status', status: 400 });
    expect(call({ kind: 'status', status: 500 })).toEqual({ failed: 'http_error', retryAt: clock.now() + 50 });
  });

  it('closed (shutdown) releases the probe without judging the upstream', () => {
    const { clock, a, call } = setup();
    call({ kind: 'status', status: 429, retryAfter: '1' });
    clock.advance(1_000);
    const probe = a.admit(clock.now()) as Permits;
    expect(a.admit(clock.now())).toEqual({ failed: 'rate_limited' });
    expect(a.settle({ kind: 'closed' }, probe, clock.now())).toEqual({ failed: 'closed' });
    // Still deferred, and the next call is the probe again.
    expect(a.notBefore).toBe(clock.now());
    expect(a.readiness(clock.now())).toEqual({ readyAt: clock.now(), probe: true, room: 998 });
  });
});

describe('UpstreamAdmission: readiness', () => {
  it('open: now, no probe, the budget room; deferred: its end and a probe; probe out: unknown', () => {
    const { clock, a, call } = setup();
    const t0 = clock.now();
    expect(a.readiness(t0)).toEqual({ readyAt: t0, probe: false, room: 1_000 });
    call({ kind: 'status', status: 429, retryAfter: '4' });
    expect(a.readiness(t0)).toEqual({ readyAt: t0 + 4_000, probe: true, room: 999 });
    clock.advance(4_000);
    const probe = a.admit(clock.now()) as Permits;
    expect(a.readiness(clock.now())).toEqual({ readyAt: undefined, probe: false, room: 0 });
    a.settle({ kind: 'answer', answer: ANSWER }, probe, clock.now());
    expect(a.readiness(clock.now())).toEqual({ readyAt: clock.now(), probe: false, room: 998 });
  });

  it('an exhausted budget: when its oldest grant leaves the window, and nothing is taken by asking', () => {
    const { clock, a } = setup({ requestsPerMinute: 1 });
    expect('failed' in a.admit(clock.now())).toBe(false);
    expect(a.readiness(clock.now())).toEqual({ readyAt: clock.now() + 60_000, probe: false, room: 0 });
    expect(a.readiness(clock.now())).toEqual({ readyAt: clock.now() + 60_000, probe: false, room: 0 });
    expect(a.budgetUsed(clock.now())).toBe(1);
  });
});
