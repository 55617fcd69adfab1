import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseHttpDate, parseRetryAfter } from '../lib/retry-after.ts';
import { classifyFailure, decideRetry, type AttemptOutcome, type RetryInput, type RetryPolicy } from './retry-policy.ts';
import { RETRY_SAFE_FAILURES, type RetrySafeFailure } from '../destinations/types.ts';

const policy: RetryPolicy = { maxAttempts: 5, maxTotalMs: 60_000, baseDelayMs: 100, maxDelayMs: 5_000 };
const NOW = Date.UTC(2025, 5, 1, 12, 0, 0); // Sun, 01 Jun 2025 12:00:00 GMT

function input(outcome: AttemptOutcome, over: Partial<RetryInput> = {}): RetryInput {
  return { attempt: 1, firstAttemptAt: NOW, now: NOW, method: 'POST', idempotent: true, retrySafe: new Set(), outcome, policy, random: () => 0.5, ...over };
}
const status = (s: number, retryAfter?: string): AttemptOutcome =>
  retryAfter === undefined ? { kind: 'response', status: s } : { kind: 'response', status: s, retryAfter };

describe('decideRetry: status classes', () => {
  it.each([200, 201, 202, 204, 299])('%i is success', (s) => {
    expect(decideRetry(input(status(s)))).toEqual({ action: 'success' });
  });

  it.each([408, 429, 500, 502, 503, 504, 507, 511, 599])('%i is retried', (s) => {
    const d = decideRetry(input(status(s)));
    expect(d).toMatchObject({ action: 'retry', reason: `status_${s}`, error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true } });
  });

  it.each([
    [301], [302], [304], [307], [308], [400], [401], [403], [404], [409], [410], [413], [422], [451], [501], [505], [600], [100],
  ])('%i gives up with status_<n>, a rejection', (s) => {
    expect(decideRetry(input(status(s)))).toEqual({ action: 'give_up', reason: `status_${s}`, error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false } });
  });

  it.each<[string, AttemptOutcome, string]>([
    ['network with code', { kind: 'network', code: 'ECONNREFUSED' }, 'network_ECONNREFUSED'],
    ['network without code', { kind: 'network' }, 'network'],
    ['timeout', { kind: 'timeout' }, 'timeout'],
  ])('%s is retried', (_name, outcome, reason) => {
    expect(decideRetry(input(outcome))).toMatchObject({ action: 'retry', reason });
  });
});

describe('decideRetry: idempotency', () => {
  it.each<[string, boolean, AttemptOutcome, string]>([
    ['POST', false, status(503), 'give_up'],
    ['POST', false, { kind: 'timeout' }, 'give_up'],
    ['POST', false, { kind: 'network', code: 'ECONNRESET' }, 'give_up'],
    ['POST', false, { kind: 'network' }, 'give_up'],
    ['POST', false, { kind: 'network', code: 'ECONNREFUSED' }, 'retry'],
    ['POST', false, { kind: 'network', code: 'ENOTFOUND' }, 'retry'],
    ['POST', false, { kind: 'network', code: 'EAI_AGAIN' }, 'retry'],
    ['POST', false, { kind: 'network', code: 'EHOSTUNREACH' }, 'retry'],
    ['POST', false, { kind: 'network', code: 'ENETUNREACH' }, 'retry'],
    ['post', false, status(503), 'give_up'],
    ['POST', true, status(503), 'retry'],
    ['GET', false, status(503), 'retry'],
    ['PUT', false, { kind: 'timeout' }, 'retry'],
  ])('%s idempotent=%s %j → %s', (method, idempotent, outcome, action) => {
    const d = decideRetry(input(outcome, { method, idempotent }));
    expect(d.action).toBe(action);
    if (d.action === 'give_up') expect(d.reason).toBe('not_idempotent');
  });

  it.each<[number, boolean | undefined, boolean, string, string]>([
    [400, true, true, 'retry', 'status_400_transient'],
    [403, true, true, 'retry', 'status_403_transient'],
    [503, true, true, 'retry', 'status_503'],
    [400, undefined, true, 'give_up', 'status_400'],
    [400, true, false, 'give_up', 'not_idempotent'],
  ])('a %i the template calls transient=%s (idempotent %s) → %s %s', (code, transient, idempotent, action, reason) => {
    const outcome: AttemptOutcome = transient === undefined ? status(code) : { kind: 'response', status: code, transient };
    expect(decideRetry(input(outcome, { idempotent }))).toMatchObject({ action, reason });
  });

  it('a permanent status wins over not_idempotent (the more precise reason)', () => {
    expect(decideRetry(input(status(400), { idempotent: false }))).toEqual({ action: 'give_up', reason: 'status_400', error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false } });
  });

  it('a 2xx on a non-idempotent POST is still success', () => {
    expect(decideRetry(input(status(200), { idempotent: false }))).toEqual({ action: 'success' });
  });
});

describe('decideRetry: a 2xx whose body names a failure (a template\'s successCode: TikTok)', () => {
  it('final: given up as status_<n>_rejected, a rejection', () => {
    expect(decideRetry(input({ kind: 'response', status: 200, rejected: 'final' }))).toEqual({ action: 'give_up', reason: 'status_200_rejected', error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false } });
  });

  it('transient: retried as status_<n>_transient; without a key only when retrySafe lists status_transient', () => {
    const outcome: AttemptOutcome = { kind: 'response', status: 200, rejected: 'transient', transient: true };
    expect(decideRetry(input(outcome))).toMatchObject({ action: 'retry', reason: 'status_200_transient', error: { code: 'TW_ERR_DELIVERY_RETRYABLE' } });
    expect(decideRetry(input(outcome, { idempotent: false }))).toMatchObject({ action: 'give_up', reason: 'not_idempotent' });
    expect(decideRetry(input(outcome, { idempotent: false, retrySafe: new Set(['status_transient']) }))).toMatchObject({ action: 'retry' });
  });
});

describe('decideRetry: what the vendor refused is retried whatever the key', () => {
  // A POST without an idempotency key and a template that declares nothing safe (GA4's case).
  const keyless = (outcome: AttemptOutcome, over: Partial<RetryInput> = {}) => decideRetry(input(outcome, { idempotent: false, ...over }));

  it.each<[string, AttemptOutcome, string, string]>([
    ['429', status(429), 'retry', 'status_429'],
    ['429 with Retry-After', status(429, '5'), 'retry', 'status_429'],
    ['429 with a garbage Retry-After', status(429, 'soon'), 'retry', 'status_429'],
    ['408', status(408), 'retry', 'status_408'],
    ['503 with Retry-After seconds', status(503, '5'), 'retry', 'status_503'],
    ['503 with Retry-After date', status(503, 'Sun, 01 Jun 2025 12:00:10 GMT'), 'retry', 'status_503'],
    ['503 with Retry-After 0', status(503, '0'), 'retry', 'status_503'],
    ['503 without Retry-After', status(503), 'give_up', 'not_idempotent'],
    ['503 with a garbage Retry-After', status(503, 'soon'), 'give_up', 'not_idempotent'],
    ['500 with Retry-After', status(500, '5'), 'give_up', 'not_idempotent'],
    ['502', status(502), 'give_up', 'not_idempotent'],
    ['504', status(504), 'give_up', 'not_idempotent'],
    ['timeout', { kind: 'timeout' }, 'give_up', 'not_idempotent'],
    ['connection reset', { kind: 'network', code: 'ECONNRESET' }, 'give_up', 'not_idempotent'],
    ['connection refused', { kind: 'network', code: 'ECONNREFUSED' }, 'retry', 'network_ECONNREFUSED'],
  ])('%s → %s %s', (_name, outcome, action, reason) => {
    expect(keyless(outcome)).toMatchObject({ action, reason });
  });

  it('a 429 Retry-After: 5 is waited out in full (GA4 lost 2,000 of 2,000 events behind one)', () => {
    expect(keyless(status(429, '5'), { random: () => 0 })).toEqual({ action: 'retry', delayMs: 5_000, reason: 'status_429', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, retryAfterMs: 5_000 });
  });

  it('the other limits still apply to a refused request', () => {
    expect(keyless(status(429), { attempt: 5 })).toEqual({ action: 'give_up', reason: 'max_attempts', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true } });
    expect(keyless(status(429, '61'))).toEqual({ action: 'give_up', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, reason: 'retry_after_beyond_deadline', retryAfterMs: 61_000 });
  });

  it('a give-up still reports the Retry-After it was given (the destination pauses for it)', () => {
    expect(keyless(status(500, '3'))).toEqual({ action: 'give_up', reason: 'not_idempotent', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, retryAfterMs: 3_000 });
    expect(decideRetry(input(status(503, '4'), { attempt: 5 }))).toEqual({ action: 'give_up', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, reason: 'max_attempts', retryAfterMs: 4_000 });
  });
});

describe('decideRetry: retrySafe, what a keyless template says its vendor may see twice', () => {
  const transient400: AttemptOutcome = { kind: 'response', status: 400, transient: true };
  it.each<[RetrySafeFailure[], AttemptOutcome, string]>([
    [['status_5xx'], status(500), 'retry'],
    [['status_5xx'], status(502), 'retry'],
    [['status_5xx'], status(503), 'retry'],
    [['status_5xx'], status(504), 'retry'],
    [['status_5xx'], { kind: 'timeout' }, 'give_up'],
    [['status_5xx'], { kind: 'network', code: 'ECONNRESET' }, 'give_up'],
    [['status_5xx'], transient400, 'give_up'],
    [['timeout'], { kind: 'timeout' }, 'retry'],
    [['timeout'], status(500), 'give_up'],
    [['network'], { kind: 'network', code: 'ECONNRESET' }, 'retry'],
    [['network'], { kind: 'network' }, 'retry'],
    [['network'], { kind: 'timeout' }, 'give_up'],
    [['status_transient'], transient400, 'retry'],
    [['status_transient'], status(500), 'give_up'],
    [[...RETRY_SAFE_FAILURES], { kind: 'timeout' }, 'retry'],
    [[], status(500), 'give_up'],
  ])('retrySafe %j, %j → %s', (safe, outcome, action) => {
    const d = decideRetry(input(outcome, { idempotent: false, retrySafe: new Set(safe) }));
    expect(d.action).toBe(action);
    if (d.action === 'give_up') expect(d.reason).toBe('not_idempotent');
  });

  it('retrySafe does not make a permanent answer retryable', () => {
    expect(decideRetry(input(status(400), { idempotent: false, retrySafe: new Set(RETRY_SAFE_FAILURES) }))).toEqual({ action: 'give_up', reason: 'status_400', error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false } });
  });
});

describe('classifyFailure', () => {
  it.each<[AttemptOutcome, number | undefined, string]>([
    [status(429), undefined, 'refused'],
    [status(408), undefined, 'refused'],
    [status(503), 5_000, 'refused'],
    [status(503), 0, 'refused'],
    [status(503), undefined, 'status_5xx'],
    [status(500), 5_000, 'status_5xx'],
    [status(599), undefined, 'status_5xx'],
    [{ kind: 'response', status: 500, transient: true }, undefined, 'status_5xx'],
    [{ kind: 'response', status: 400, transient: true }, undefined, 'status_transient'],
    [{ kind: 'network', code: 'ENOTFOUND' }, undefined, 'never_sent'],
    [{ kind: 'network', code: 'ECONNRESET' }, undefined, 'network'],
    [{ kind: 'network' }, undefined, 'network'],
    [{ kind: 'timeout' }, undefined, 'timeout'],
  ])('%j (Retry-After %s ms) → %s', (outcome, ra, cls) => {
    expect(classifyFailure(outcome, ra)).toBe(cls);
  });
});

describe('decideRetry: Retry-After', () => {
  it.each<[string, string | undefined, number]>([
    ['delta-seconds', '3', 3_000],
    ['delta-seconds with OWS', ' \t7 ', 7_000],
    ['zero', '0', 50],
    ['IMF-fixdate', 'Sun, 01 Jun 2025 12:00:10 GMT', 10_000],
    ['rfc850-date', 'Sunday, 01-Jun-25 12:00:20 GMT', 20_000],
    ['asctime-date', 'Sun Jun  1 12:00:30 2025', 30_000],
    ['date in the past', 'Sun, 01 Jun 2025 11:00:00 GMT', 50],
    ['garbage', 'soon', 50],
    ['negative', '-5', 50],
    ['decimal', '1.5', 50],
    ['lower-case month', 'Sun, 01 jun 2025 12:00:10 GMT', 50],
    ['zone other than GMT', 'Sun, 01 Jun 2025 12:00:10 UTC', 50],
    ['31 February', 'Mon, 31 Feb 2025 12:00:10 GMT', 50],
    ['hour 24', 'Sun, 01 Jun 2025 24:00:10 GMT', 50],
    ['ISO 8601', '2025-06-01T12:00:10Z', 50],
    ['empty', '', 50],
    ['two values', '3, 4', 50],
  ])('%s (%j) → delay %i ms', (_name, header, delay) => {
    // random 0.5, attempt 1: backoff = floor(0.5 * 100) = 50 ms
    expect(decideRetry(input(status(503, header)))).toMatchObject({ action: 'retry', delayMs: delay });
  });

  it('is honoured on 429 too, and never shortened by a smaller backoff', () => {
    const d = decideRetry(input(status(429, '2'), { random: () => 0 }));
    expect(d).toEqual({ action: 'retry', delayMs: 2_000, reason: 'status_429', error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true }, retryAfterMs: 2_000 });
  });

  it('a backoff larger than Retry-After wins (delay = max of both)', () => {
    const d = decideRetry(input(status(503, '1'), { attempt: 4, random: () => 0.999 }));
    // ceiling = min(5000, 100 * 2^3) = 800; floor(0.999 * 800) = 799 < 1000, so Retry-After rules
    expect(d).toMatchObject({ delayMs: 1_000 });
    const d2 = decideRetry(input(status(503, '1'), { attempt: 5, random: () => 0.999, policy: { ...policy, maxAttempts: 9 } }));
    // ceiling = min(5000, 1600) = 1600 → 1598 > 1000
    expect(d2).toMatchObject({ delayMs: 1_598 });
  });

  it.each<[string, string]>([
    ['seconds beyond the window', '61'],
    ['huge seconds', '99999999999999999999999999'],
    ['absurdly long digit string', '9'.repeat(400)],
    ['date beyond the window', 'Sun, 01 Jun 2025 12:05:00 GMT'],
    ['far-future date', 'Fri, 31 Dec 9999 23:59:59 GMT'],
  ])('%s gives up rather than retry early', (_name, header) => {
    expect(decideRetry(input(status(503, header)))).toMatchObject({ action: 'give_up', reason: 'retry_after_beyond_deadline' });
  });

  it('a Retry-After landing exactly on the deadline is allowed', () => {
    expect(decideRetry(input(status(503, '60')))).toMatchObject({ action: 'retry', delayMs: 60_000 });
  });

  it('is ignored on a give-up status', () => {
    expect(decideRetry(input(status(400, '1')))).toEqual({ action: 'give_up', reason: 'status_400', error: { code: 'TW_ERR_DELIVERY_REJECTED', retryable: false } });
  });
});

describe('decideRetry: backoff and caps', () => {
  it.each<[number, number, number]>([
    // attempt, random, expected delay: floor(random * min(5000, 100 * 2^(attempt-1)))
    [1, 0, 0],
    [1, 0.999, 99],
    [2, 0.5, 100],
    [3, 0.5, 200],
    [4, 1, 800],
    [4, 0.25, 200],
  ])('attempt %i, random %d → %i ms (full jitter)', (attempt, r, delay) => {
    expect(decideRetry(input({ kind: 'timeout' }, { attempt, random: () => r }))).toMatchObject({ delayMs: delay });
  });

  it('the backoff ceiling is maxDelayMs however many attempts', () => {
    const d = decideRetry(input({ kind: 'timeout' }, { attempt: 60, random: () => 0.999, policy: { ...policy, maxAttempts: 100, maxTotalMs: 1e9 } }));
    expect(d).toMatchObject({ delayMs: 4_995 });
  });

  it.each([[NaN], [-1], [7], [Infinity]])('a broken random (%d) never yields a delay outside [0, ceiling]', (r) => {
    const d = decideRetry(input({ kind: 'timeout' }, { random: () => r }));
    expect(d.action).toBe('retry');
    if (d.action === 'retry') {
      expect(d.delayMs).toBeGreaterThanOrEqual(0);
      expect(d.delayMs).toBeLessThanOrEqual(100);
    }
  });

  it.each<[string, Partial<RetryInput>, string]>([
    ['last attempt used', { attempt: 5 }, 'max_attempts'],
    ['beyond the attempts', { attempt: 9 }, 'max_attempts'],
    ['window already over', { now: NOW + 60_000 }, 'max_total_time'],
    ['backoff would land beyond the window', { now: NOW + 59_990, random: () => 0.5 }, 'max_total_time'],
  ])('%s → give up %s', (_name, over, reason) => {
    expect(decideRetry(input({ kind: 'timeout' }, over))).toEqual({ action: 'give_up', reason, error: { code: 'TW_ERR_DELIVERY_RETRYABLE', retryable: true } });
  });
});

describe('parseRetryAfter / parseHttpDate', () => {
  it('rfc850 two-digit years more than 50 years ahead mean the past century', () => {
    // RFC 9110 §5.6.7: from 2025, "99" is 1999, "74" is 2074.
    expect(parseHttpDate('Thursday, 01-Jan-99 00:00:00 GMT', NOW)).toBe(Date.UTC(1999, 0, 1));
    expect(parseHttpDate('Monday, 01-Jan-74 00:00:00 GMT', NOW)).toBe(Date.UTC(2074, 0, 1));
  });

  it('accepts the leap second the grammar allows and years below 100 literally', () => {
    expect(parseHttpDate('Tue, 30 Jun 2015 23:59:60 GMT', NOW)).toBe(Date.UTC(2015, 6, 1));
    expect(parseHttpDate('Sat, 01 Jan 0050 00:00:00 GMT', NOW)).toBe(new Date('0050-01-01T00:00:00Z').getTime());
  });

  it('asctime accepts a space-padded single-digit day', () => {
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Sun Nov 6 08:49:37 1994', NOW)).toBeUndefined();
  });

  it('past dates clamp to 0', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });
});

describe('decideRetry: properties', () => {
  const retryAfterArb = fc.oneof(
    fc.constant(undefined),
    fc.nat({ max: 200 }).map(String),
    fc.integer({ min: -120, max: 200 }).map((s) => new Date(NOW + s * 1000).toUTCString()),
    fc.string(),
  );

  it('delay is never negative, never below Retry-After, never above maxDelayMs unless Retry-After demands it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom(408, 429, 500, 502, 503, 504),
        retryAfterArb,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.record({
          maxAttempts: fc.integer({ min: 1, max: 50 }),
          maxTotalMs: fc.integer({ min: 1, max: 1_000_000 }),
          baseDelayMs: fc.integer({ min: 0, max: 10_000 }),
          maxDelayMs: fc.integer({ min: 0, max: 120_000 }),
        }),
        fc.integer({ min: 0, max: 500_000 }),
        (attempt, s, retryAfter, r, pol, elapsed) => {
          const now = NOW + elapsed;
          const d = decideRetry({
            attempt,
            firstAttemptAt: NOW,
            now,
            method: 'POST',
            idempotent: true,
            retrySafe: new Set(),
            outcome: status(s, retryAfter),
            policy: pol,
            random: () => r,
          });
          if (d.action !== 'retry') return;
          const ra = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, now);
          expect(d.delayMs).toBeGreaterThanOrEqual(0);
          if (ra !== undefined) expect(d.delayMs).toBeGreaterThanOrEqual(ra);
          expect(d.delayMs).toBeLessThanOrEqual(Math.max(pol.maxDelayMs, ra ?? 0));
          expect(now + d.delayMs).toBeLessThanOrEqual(NOW + pol.maxTotalMs);
          expect(attempt).toBeLessThan(pol.maxAttempts);
        },
      ),
      { numRuns: 2000 },
    );
  });

  const outcomeArb: fc.Arbitrary<AttemptOutcome> = fc.oneof(
    fc.record({ kind: fc.constant('response' as const), status: fc.integer({ min: 100, max: 599 }), retryAfter: retryAfterArb, transient: fc.boolean() }).map((o) => {
      const out: AttemptOutcome = { kind: 'response', status: o.status, transient: o.transient };
      if (o.retryAfter !== undefined) out.retryAfter = o.retryAfter;
      return out;
    }),
    fc.constantFrom<AttemptOutcome>({ kind: 'timeout' }, { kind: 'network' }, { kind: 'network', code: 'ECONNRESET' }, { kind: 'network', code: 'ECONNREFUSED' }),
  );

  it('a 429 is never given up as not_idempotent, and declaring more retrySafe never turns a retry into a give-up', () => {
    fc.assert(
      fc.property(outcomeArb, fc.subarray([...RETRY_SAFE_FAILURES]), fc.subarray([...RETRY_SAFE_FAILURES]), (outcome, a, b) => {
        const keyless = (safe: RetrySafeFailure[]) => decideRetry(input(outcome, { idempotent: false, retrySafe: new Set(safe) }));
        const narrow = keyless(a);
        const wide = keyless([...new Set([...a, ...b])]);
        if (outcome.kind === 'response' && outcome.status === 429) expect(narrow).not.toMatchObject({ reason: 'not_idempotent' });
        if (narrow.action === 'retry') expect(wide).toEqual(narrow);
        // A key makes every retrySafe declaration moot.
        const keyed = decideRetry(input(outcome, { idempotent: true }));
        if (wide.action === 'retry') expect(keyed).toEqual(wide);
      }),
      { numRuns: 2000 },
    );
  });
});
