/**
 * What happens to a batch after one of its attempts: a pure function of the retry policy's
 * decision (retry-policy.ts), what the sender saw, and whether delivery is parking (shutting
 * down). No I/O, no clock: the scheduler carries the step out.
 *
 * - `deliver`: the vendor took it.
 * - `park`: shutting down, and the batch would go out again (a retry, a split, or a request we
 *   cut short): it is parked for after the restart. An aborted request may still have reached
 *   the vendor; at-least-once wins, and the idempotency key lets the vendor collapse a repeat.
 * - `split`: the vendor rejected the batch whole for an invalid event it holds (the template's
 *   bisectOn, bisect.ts): send its two halves, each like a first attempt.
 * - `give_up`: a dead letter with the policy's reason.
 * - `retry`: again after `delayMs`.
 *
 * `pauseMs`, on any step but `deliver`: the vendor's Retry-After, which holds the whole
 * destination (pause.ts), capped at the retry window: no batch can wait longer than that anyway,
 * and an absurd value must not freeze a destination until restart.
 */
import { bisectionBudget, onWholeBatchRejection, type BisectionBudget } from './bisect.ts';
import type { AttemptOutcome, RetryDecision } from './retry-policy.ts';

export type NextStep =
  | { action: 'deliver' }
  /** `retryInMs`: the retry the batch was due for, kept as its notBefore in the outbox. */
  | { action: 'park'; retryInMs?: number }
  /** Send `entries[0, at)` and `entries[at, size)`; `budget` is the one to spend the split from. */
  | { action: 'split'; at: number; budget: BisectionBudget }
  | { action: 'give_up'; reason: string }
  | { action: 'retry'; delayMs: number; reason: string };

export interface AfterAttempt {
  next: NextStep;
  /** Pause the destination this long from now (a Retry-After, capped at the retry window). */
  pauseMs?: number;
}

export interface AfterAttemptInput {
  decision: RetryDecision;
  /** What the attempt produced (src/lib/http/send.ts). */
  outcome: AttemptOutcome;
  /** The sender flagged the answer as a whole-batch rejection (BoundDestination.rejectsBatch). */
  rejectsBatch: boolean;
  /** Delivery is shutting down: nothing is sent again in this process. */
  parking: boolean;
  /** Events in the batch (or bisected part) the attempt carried. */
  size: number;
  /**
   * The original batch's bisection budget, once it was split; undefined before. Not changed here:
   * a split hands it back, to be spent by the caller and shared by the parts.
   */
  bisection: BisectionBudget | undefined;
  /** The retry window (`RetryPolicy.maxTotalMs`), the longest a Retry-After may pause. */
  maxPauseMs: number;
}

export function afterAttempt(input: AfterAttemptInput): AfterAttempt {
  const { decision, outcome } = input;
  if (decision.action === 'success') return { next: { action: 'deliver' } };
  const step = (next: NextStep): AfterAttempt =>
    decision.retryAfterMs === undefined ? { next } : { next, pauseMs: Math.min(decision.retryAfterMs, input.maxPauseMs) };

  const abortedByUs = outcome.kind === 'network' && outcome.code === 'ABORTED';
  if (input.parking && decision.action === 'retry') return step({ action: 'park', retryInMs: decision.delayMs });
  if (input.parking && abortedByUs) return step({ action: 'park' });

  if (decision.action === 'retry') return step({ action: 'retry', delayMs: decision.delayMs, reason: decision.reason });

  // A temporary answer (retryOn) was retried above; only a final whole-batch rejection is split.
  if (input.rejectsBatch && outcome.kind === 'response' && outcome.transient !== true) {
    const budget = input.bisection ?? bisectionBudget(input.size);
    const verdict = onWholeBatchRejection(input.size, budget);
    // Shutting down: the batch is resumed after the restart, and split then.
    if (verdict.action === 'split') return step(input.parking ? { action: 'park' } : { action: 'split', at: verdict.at, budget });
  }
  return step({ action: 'give_up', reason: decision.reason });
}
