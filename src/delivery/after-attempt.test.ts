import { describe, expect, it } from 'vitest';
import { afterAttempt, type AfterAttempt, type AfterAttemptInput } from './after-attempt.ts';
import { bisectionBudget } from './bisect.ts';
import type { AttemptOutcome, RetryDecision } from './retry-policy.ts';
import { DeliveryRejectedError, DeliveryRetryableError, errorCodeOf } from '../errors.ts';

const RETRYABLE = errorCodeOf(DeliveryRetryableError);
const REJECTED = errorCodeOf(DeliveryRejectedError);

const OK: AttemptOutcome = { kind: 'response', status: 200 };
const S503: AttemptOutcome = { kind: 'response', status: 503 };
const S429: AttemptOutcome = { kind: 'response', status: 429, retryAfter: '5' };
const S400: AttemptOutcome = { kind: 'response', status: 400 };
const S400_TRANSIENT: AttemptOutcome = { kind: 'response', status: 400, transient: true };
const ABORTED: AttemptOutcome = { kind: 'network', code: 'ABORTED' };
const RESET: AttemptOutcome = { kind: 'network', code: 'ECONNRESET' };

const SUCCESS: RetryDecision = { action: 'success' };
const RETRY: RetryDecision = { action: 'retry', delayMs: 800, reason: 'status_503', error: RETRYABLE };
const RETRY_AFTER: RetryDecision = { action: 'retry', delayMs: 5_000, reason: 'status_429', error: RETRYABLE, retryAfterMs: 5_000 };
const GIVE_UP_400: RetryDecision = { action: 'give_up', reason: 'status_400', error: REJECTED };
const GIVE_UP_AFTER: RetryDecision = { action: 'give_up', reason: 'retry_after_beyond_deadline', error: RETRYABLE, retryAfterMs: 10 ** 400 };
const GIVE_UP_MAX: RetryDecision = { action: 'give_up', reason: 'max_attempts', error: RETRYABLE };

const WINDOW = 60_000;
const spent = { limit: 16, spent: 16 };

type Row = [string, Partial<AfterAttemptInput> & Pick<AfterAttemptInput, 'decision' | 'outcome'>, AfterAttempt];

const rows: Row[] = [
  ['2xx: delivered', { decision: SUCCESS, outcome: OK }, { next: { action: 'deliver' } }],
  ['2xx while parking: still delivered', { decision: SUCCESS, outcome: OK, parking: true }, { next: { action: 'deliver' } }],
  ['a retry', { decision: RETRY, outcome: S503 }, { next: { action: 'retry', delayMs: 800, reason: 'status_503', error: RETRYABLE } }],
  ['a retry with Retry-After pauses the destination', { decision: RETRY_AFTER, outcome: S429 }, { next: { action: 'retry', delayMs: 5_000, reason: 'status_429', error: RETRYABLE }, pauseMs: 5_000 }],
  ['a retry while parking: parked, keeping its due time', { decision: RETRY, outcome: S503, parking: true }, { next: { action: 'park', retryInMs: 800 } }],
  ['a Retry-After while parking: parked, the pause still held', { decision: RETRY_AFTER, outcome: S429, parking: true }, { next: { action: 'park', retryInMs: 5_000 }, pauseMs: 5_000 }],
  ['a request we aborted while parking: parked', { decision: GIVE_UP_MAX, outcome: ABORTED, parking: true }, { next: { action: 'park' } }],
  ['an aborted request outside parking: given up', { decision: GIVE_UP_MAX, outcome: ABORTED }, { next: { action: 'give_up', reason: 'max_attempts', error: RETRYABLE } }],
  ['another network failure while parking, given up: a dead letter', { decision: GIVE_UP_MAX, outcome: RESET, parking: true }, { next: { action: 'give_up', reason: 'max_attempts', error: RETRYABLE } }],
  ['a permanent answer: given up', { decision: GIVE_UP_400, outcome: S400 }, { next: { action: 'give_up', reason: 'status_400', error: REJECTED } }],
  ['a Retry-After beyond the window: given up, the pause capped at the window', { decision: GIVE_UP_AFTER, outcome: S429 }, { next: { action: 'give_up', reason: 'retry_after_beyond_deadline', error: RETRYABLE }, pauseMs: WINDOW }],
  ['a whole-batch rejection of 16: split in 8 + 8', { decision: GIVE_UP_400, outcome: S400, rejectsBatch: true, size: 16 }, { next: { action: 'split', at: 8, budget: bisectionBudget(16) } }],
  ['a whole-batch rejection of 5: the first half takes the odd event', { decision: GIVE_UP_400, outcome: S400, rejectsBatch: true, size: 5 }, { next: { action: 'split', at: 3, budget: bisectionBudget(5) } }],
  ['a whole-batch rejection of one event: it is the invalid one, given up', { decision: GIVE_UP_400, outcome: S400, rejectsBatch: true, size: 1 }, { next: { action: 'give_up', reason: 'status_400', error: REJECTED } }],
  ['a whole-batch rejection with the budget spent: given up whole', { decision: GIVE_UP_400, outcome: S400, rejectsBatch: true, size: 4, bisection: spent }, { next: { action: 'give_up', reason: 'status_400', error: REJECTED } }],
  ['a whole-batch rejection while parking: parked, split after the restart', { decision: GIVE_UP_400, outcome: S400, rejectsBatch: true, size: 16, parking: true }, { next: { action: 'park' } }],
  ['a temporary rejection the policy gave up on: never split', { decision: GIVE_UP_MAX, outcome: S400_TRANSIENT, rejectsBatch: true, size: 16 }, { next: { action: 'give_up', reason: 'max_attempts', error: RETRYABLE } }],
  ['a whole-batch flag on a network failure: never split', { decision: GIVE_UP_MAX, outcome: RESET, rejectsBatch: true, size: 16 }, { next: { action: 'give_up', reason: 'max_attempts', error: RETRYABLE } }],
  ['a whole-batch flag on a retried answer: retried, not split', { decision: RETRY, outcome: S503, rejectsBatch: true, size: 16 }, { next: { action: 'retry', delayMs: 800, reason: 'status_503', error: RETRYABLE } }],
];

describe('afterAttempt', () => {
  it.each(rows)('%s', (_name, input, expected) => {
    expect(afterAttempt({ rejectsBatch: false, parking: false, size: 3, bisection: undefined, maxPauseMs: WINDOW, ...input })).toEqual(expected);
  });

  it('a split hands back the budget the parts share, unspent (the caller spends it)', () => {
    const budget = { limit: 64, spent: 6 };
    const { next } = afterAttempt({ decision: GIVE_UP_400, outcome: S400, rejectsBatch: true, parking: false, size: 4, bisection: budget, maxPauseMs: WINDOW });
    expect(next).toEqual({ action: 'split', at: 2, budget });
    expect(next.action === 'split' && next.budget).toBe(budget);
    expect(budget.spent).toBe(6);
  });
});
