/**
 * One destination's jobs between its batcher and the wire. A job is a closed batch (or a bisected
 * part of one) and its attempts. Before every send, the first one included, the job's consent is
 * re-checked (`recheck`); then it waits in the ready queue, in order, for a request slot
 * (`maxInFlight`) and for the destination's pause (pause.ts) to be over. After each attempt the
 * pure `afterAttempt` says what follows, which this carries out: a retry waits on a timer of the
 * injected clock (never by blocking), a split sends both halves, the rest ends in a result.
 *
 * The send function is injected (sender.ts in production), so this runs in tests on a fake clock
 * with a fake sender. Parking is delegated (`park`, to the parker); the scheduler only builds the
 * outbox entries, since their `notBefore` needs its timers and its pause.
 */
import type { BoundDestination, VendorRequest } from '../destinations/types.ts';
import { afterAttempt } from './after-attempt.ts';
import { itemsJson, keepEntries, type Batch, type BatchEntry } from './batcher.ts';
import { spend, type BisectionBudget } from './bisect.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { OutboxEntry, OutboxReason } from './outbox.ts';
import { createPauseGate } from './pause.ts';
import type { DeliveryResult, LastExchange } from './result.ts';
import type { RowFailure } from '../destinations/row-errors.ts';
import { splitRows } from './row-split.ts';
import { decideRetry, type AttemptOutcome, type RetryDecision, type RetryPolicy } from './retry-policy.ts';
import type { SendOptions, SendResult } from '../lib/http/send.ts';
import { asError, DeliveryRejectedError, DeliveryRetryableError, errorCodeOf, InternalError, TemplateError, UnavailableError, type ErrorCode } from '../errors.ts';

const ROW_REJECTED = errorCodeOf(DeliveryRejectedError);
const ROW_RETRYABLE = errorCodeOf(DeliveryRetryableError);

/** Returns the ids still allowed to go out; called before every send. A revocation wins. */
export type RecheckHook = (destinationId: string, messageIds: string[]) => Promise<Set<string>> | Set<string>;

/** What one attempt produced: the sender's result, or an auth failure before anything left (oauth2.ts). */
export type AttemptResult = Omit<SendResult, 'outcome'> & { outcome: AttemptOutcome };

/**
 * One HTTP exchange (send of src/lib/http/send.ts over the shared agent, behind the auth step of
 * oauth2.ts); must report failures as outcomes. `destination` is the job's, for its `auth`.
 */
export type SendFn = (request: VendorRequest, options: SendOptions, destination?: BoundDestination) => Promise<AttemptResult>;

export interface SchedulerOptions {
  destination: BoundDestination;
  /** Most concurrent requests to this destination. */
  maxInFlight: number;
  /** Budget for one HTTP exchange. */
  requestTimeoutMs: number;
  policy: RetryPolicy;
  clock: Clock;
  /** Uniform in [0, 1), for backoff jitter. */
  random: () => number;
  send: SendFn;
  recheck?: RecheckHook | undefined;
  /** Receives every result; must not throw. */
  report: (result: DeliveryResult) => void;
  /** Releases events from the batcher's memory bound once they reached a final outcome. */
  settle: (count: number) => void;
  /** Hands entries to the outbox (parker.ts), which reports and settles them. */
  park: (entries: OutboxEntry[], reason: OutboxReason, last?: LastExchange) => void;
  /** Delivery is shutting down: what would be sent is parked instead. */
  parking: () => boolean;
  /** Called whenever jobs moved, for a pending flush or close to look again. */
  onChange: () => void;
}

export interface SchedulerStats {
  ready: number;
  inFlight: number;
  awaitingRetry: number;
}

export interface Scheduler {
  /** Takes a batch the batcher closed: consent re-checked, then queued. */
  submit(batch: Batch): void;
  /** A reloaded configuration brings a new object; new batches use the newest. */
  setDestination(destination: BoundDestination): void;
  /** Starts ready jobs (or parks them, when parking). */
  dispatch(): void;
  /** Shutting down: parks what is ready or awaits a retry, aborts what is in flight. */
  parkWaiting(): void;
  /**
   * Flushing with a deadline: parks the retries due after it and, when the pause outlasts it, the
   * ready jobs. True when it parked anything.
   */
  parkLate(deadline: number): boolean;
  /** Jobs ready, in flight, awaiting a retry or being re-checked. */
  readonly busy: boolean;
  stats(): SchedulerStats;
  /** Drops the pause and its timer (shutdown). */
  close(): void;
}

interface Job {
  destination: BoundDestination;
  batch: Batch;
  attempts: number;
  firstAttemptAt?: number;
  abort?: AbortController;
  timer?: TimerHandle;
  dueAt?: number;
  /**
   * Set once the vendor rejected the batch whole (the template's bisectOn): the extra requests the
   * original batch may still cost, shared by every part split from it (bisect.ts).
   */
  bisection?: BisectionBudget;
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { clock, policy, report, settle, onChange } = options;
  const destinationId = options.destination.id;
  let destination = options.destination;
  const ready: Job[] = [];
  const inFlight = new Set<Job>();
  const awaitingRetry = new Set<Job>();
  const rechecking = new Set<Job>();

  // A Retry-After holds the whole destination: no request of any of its batches starts inside the
  // window. When it ends, what waited goes out in order (each batch's own backoff still applies).
  const gate = createPauseGate({
    clock,
    onOpen: () => {
      dispatch();
      onChange();
    },
  });

  const ids = (job: Job): string[] => job.batch.entries.map((e) => e.messageId);
  const release = (job: Job): void => settle(job.batch.entries.length);

  /** When a job may go out at the earliest: its own retry time and its destination's pause. */
  function notBefore(job: Job): number | undefined {
    const paused = gate.pausedUntil(destinationId);
    if (paused === undefined) return job.dueAt;
    return job.dueAt === undefined ? paused : Math.max(job.dueAt, paused);
  }

  /** Moves ready jobs along: to the wire normally, to the outbox once parking. */
  function dispatch(): void {
    if (options.parking()) {
      const jobs = ready.splice(0);
      if (jobs.length > 0) park(jobs, 'shutdown');
      return;
    }
    // Paused by a Retry-After: the jobs stay ready, in order, until the gate opens (onOpen).
    if (gate.pausedUntil(destinationId) !== undefined) return;
    while (inFlight.size < options.maxInFlight) {
      const job = ready.shift();
      if (!job) break;
      startAttempt(job);
    }
  }

  function build(job: Job): VendorRequest | undefined {
    try {
      return job.destination.buildRequest(
        job.batch.envelope,
        job.batch.entries.map((e) => e.item),
        itemsJson(job.batch),
      );
    } catch {
      // A template bug: the same batch would fail the same way on every attempt.
      report({ destinationId, messageIds: ids(job), outcome: 'failed', attempt: job.attempts, reason: 'build_request_failed', error: errorCodeOf(TemplateError), durationMs: 0 });
      release(job);
      return undefined;
    }
  }

  function startAttempt(job: Job): void {
    // Rebuilt on every attempt from the same batch, so items and idempotency keys are unchanged.
    const req = build(job);
    if (!req) return;
    job.attempts += 1;
    job.firstAttemptAt ??= clock.now();
    const abort = new AbortController();
    job.abort = abort;
    inFlight.add(job);
    let sending: Promise<AttemptResult>;
    try {
      sending = options.send(req, {
        timeoutMs: options.requestTimeoutMs,
        signal: abort.signal,
        secretValues: job.destination.secretValues,
        isTransient: (status, body) => job.destination.transientResponse(status, body),
        rejectsBatch: (status, body) => job.destination.rejectsBatch(status, body),
        ...(job.destination.answerRejected === undefined ? {} : { answerRejected: job.destination.answerRejected }),
        ...(job.destination.rowErrors === undefined ? {} : { keepBody: true, maxResponseBytes: job.destination.rowErrors.maxResponseBytes }),
        now: () => clock.now(),
      }, job.destination);
    } catch (err) {
      sending = Promise.reject(asError(err));
    }
    track(
      sending
        .then((sent) => {
          inFlight.delete(job);
          delete job.abort;
          const { outcome, rows } = readRows(job, sent);
          const decision = retryDecision(job, req.method, outcome);
          const { next, pauseMs } = afterAttempt({
            decision,
            outcome,
            rejectsBatch: sent.rejectsBatch === true,
            parking: options.parking(),
            size: job.batch.entries.length,
            bisection: job.bisection,
            maxPauseMs: policy.maxTotalMs,
          });
          if (pauseMs !== undefined) gate.pause(destinationId, clock.now() + pauseMs);
          const base: DeliveryResult = { destinationId, messageIds: ids(job), outcome: 'delivered', attempt: job.attempts, durationMs: sent.durationMs };
          if (sent.outcome.kind === 'response') base.status = sent.outcome.status;
          if (sent.excerpt !== undefined && decision.action !== 'success') base.responseExcerpt = sent.excerpt;

          switch (next.action) {
            case 'deliver':
              if (rows !== undefined) settleRows(job, base, rows, req.method);
              else {
                report(base);
                release(job);
              }
              break;
            case 'park':
              if (next.retryInMs !== undefined) job.dueAt = clock.now() + next.retryInMs;
              park([job], 'shutdown', { status: base.status, durationMs: base.durationMs });
              break;
            case 'split':
              // Nothing is final for these events yet: the halves go out again.
              split(job, next.at, next.budget);
              break;
            case 'give_up':
              report({ ...base, outcome: 'failed', reason: next.reason, error: next.error });
              park([job], `gave_up:${next.reason}`, undefined, next.error);
              break;
            case 'retry':
              report({ ...base, outcome: 'retry_scheduled', reason: next.reason, error: next.error, retryInMs: next.delayMs });
              scheduleRetry(job, next.delayMs);
              break;
          }
          dispatch();
          onChange();
        }),
      job,
    );
  }

  /** The retry policy's verdict on a job's latest attempt (retry-policy.ts). */
  function retryDecision(job: Job, method: string, outcome: AttemptOutcome): RetryDecision {
    return decideRetry({
      attempt: job.attempts,
      firstAttemptAt: job.firstAttemptAt ?? clock.now(),
      now: clock.now(),
      method,
      idempotent: job.destination.idempotent,
      retrySafe: job.destination.retrySafe,
      outcome,
      policy,
      random: options.random,
    });
  }

  /**
   * A 2xx answer of a destination with `rowErrors` (Google Ads partial failure) is read for the
   * rows it failed. One it cannot read for certain counts as a final rejection of the whole batch:
   * a dead letter to replay (the vendor deduplicates the rows it took by their idempotency key)
   * rather than rows acknowledged that never arrived.
   */
  function readRows(job: Job, sent: AttemptResult): { outcome: AttemptOutcome; rows?: RowFailure[] } {
    const reader = job.destination.rowErrors;
    const outcome = sent.outcome;
    if (reader === undefined || outcome.kind !== 'response' || outcome.status < 200 || outcome.status > 299 || outcome.rejected !== undefined) return { outcome };
    const cut = sent.truncated || sent.interrupted !== undefined;
    const verdict = reader.read(sent.body?.toString('utf8') ?? '', cut, job.batch.entries.length);
    if (verdict === undefined) return { outcome };
    if (verdict.kind === 'unreadable') return { outcome: { ...outcome, rejected: 'final' } };
    return { outcome, rows: verdict.failures };
  }

  /**
   * Carries out a 2xx answer that failed some rows (row-split.ts): the rows it took are delivered,
   * each final code's rows give up as one dead letter (reason `row_rejected:<code>`), and the
   * transient rows go to the retry policy as a part of their own, with the wait the template asks
   * for (`rowErrors.retryAfterSeconds`). That wait is the rows' own: it does not pause the
   * destination, whose other requests the vendor takes.
   */
  function settleRows(job: Job, base: DeliveryResult, failures: readonly RowFailure[], method: string): void {
    const split = splitRows(job.batch.entries.length, failures);
    const last: LastExchange = { status: base.status, durationMs: base.durationMs };
    const partOf = (indices: readonly number[]): Job => {
      const chosen = new Set(indices.map((i) => job.batch.entries[i]));
      const part: Job = { destination: job.destination, batch: keepEntries(job.batch, (e) => chosen.has(e)), attempts: job.attempts };
      if (job.firstAttemptAt !== undefined) part.firstAttemptAt = job.firstAttemptAt;
      return part;
    };
    if (split.delivered.length > 0) {
      const part = partOf(split.delivered);
      report({ ...base, messageIds: ids(part) });
      release(part);
    }
    for (const [code, indices] of split.rejected) {
      const part = partOf(indices);
      const reason = `row_rejected:${code}`;
      report({ ...base, messageIds: ids(part), outcome: 'failed', reason, error: ROW_REJECTED });
      park([part], `gave_up:${reason}`, last, ROW_REJECTED);
    }
    if (split.transient.length === 0) return;
    const part = partOf(split.transient);
    const wait = job.destination.rowErrors?.retryAfterSeconds;
    const outcome: AttemptOutcome = { kind: 'response', status: base.status ?? 200, rejected: 'transient', transient: true };
    if (wait !== undefined) outcome.retryAfter = String(wait);
    const decision = retryDecision(part, method, outcome);
    if (decision.action === 'retry') {
      if (options.parking()) {
        part.dueAt = clock.now() + decision.delayMs;
        park([part], 'shutdown', last);
        return;
      }
      report({ ...base, messageIds: ids(part), outcome: 'retry_scheduled', reason: 'row_transient', error: decision.error, retryInMs: decision.delayMs });
      scheduleRetry(part, decision.delayMs);
      return;
    }
    const reason = decision.action === 'give_up' ? decision.reason : 'row_transient';
    const error = decision.action === 'give_up' ? decision.error : ROW_RETRYABLE;
    report({ ...base, messageIds: ids(part), outcome: 'failed', reason, error });
    park([part], `gave_up:${reason}`, last, error);
  }

  /**
   * The vendor rejected this batch (or part of one) whole for an invalid event it holds: its two
   * halves are each consent re-checked and sent like a first attempt, so that only the invalid
   * events give up (bisect.ts).
   */
  function split(job: Job, at: number, budget: BisectionBudget): void {
    spend(budget);
    const first = new Set(job.batch.entries.slice(0, at));
    const halves: ((e: BatchEntry) => boolean)[] = [(e) => first.has(e), (e) => !first.has(e)];
    for (const keep of halves) {
      // A part's attempts count from its own first request; the retry window stays the batch's.
      const part: Job = { destination: job.destination, batch: keepEntries(job.batch, keep), attempts: 0, bisection: budget };
      if (job.firstAttemptAt !== undefined) part.firstAttemptAt = job.firstAttemptAt;
      recheckThenQueue(part);
    }
  }

  function scheduleRetry(job: Job, delayMs: number): void {
    job.dueAt = clock.now() + delayMs;
    awaitingRetry.add(job);
    job.timer = clock.setTimeout(() => {
      delete job.timer;
      delete job.dueAt;
      awaitingRetry.delete(job);
      recheckThenQueue(job);
    }, delayMs);
  }

  function recheckThenQueue(job: Job): void {
    const hook = options.recheck;
    if (!hook) {
      ready.push(job);
      dispatch();
      onChange();
      return;
    }
    rechecking.add(job);
    track(
      Promise.resolve()
        .then(() => hook(destinationId, ids(job)))
        .then(
          (allowed) => {
            rechecking.delete(job);
            const dropped = job.batch.entries.filter((e) => !allowed.has(e.messageId));
            if (dropped.length > 0) {
              // A bisected part was sent before, inside its whole batch: resending it is a retry.
              const reason = job.attempts === 0 && job.bisection === undefined ? 'consent_revoked_before_send' : 'consent_revoked_before_retry';
              report({ destinationId, messageIds: dropped.map((e) => e.messageId), outcome: 'dropped', attempt: job.attempts, reason, durationMs: 0 });
              settle(dropped.length);
              job.batch = keepEntries(job.batch, (e) => allowed.has(e.messageId));
            }
            if (job.batch.entries.length > 0) {
              ready.push(job);
              dispatch();
            }
            onChange();
          },
          () => {
            // Without a fresh answer we may not send (a revocation may be what we missed), and
            // we must not lose the events either: dead-letter them.
            rechecking.delete(job);
            report({ destinationId, messageIds: ids(job), outcome: 'failed', attempt: job.attempts, reason: 'recheck_failed', error: errorCodeOf(UnavailableError), durationMs: 0 });
            park([job], 'gave_up:recheck_failed', undefined, errorCodeOf(UnavailableError));
            onChange();
          },
        ),
      job,
    );
  }

  /** Builds the jobs' outbox entries and parks them in one call. */
  function park(jobs: Job[], reason: OutboxReason, last?: LastExchange, error?: ErrorCode): void {
    const parkedAt = clock.now();
    const entries: OutboxEntry[] = [];
    for (const job of jobs) {
      if (job.timer !== undefined) {
        clock.clearTimeout(job.timer);
        delete job.timer;
      }
      const request = build(job);
      if (!request) continue;
      const entry: OutboxEntry = { destinationId, messageIds: ids(job), request, reason, attempts: job.attempts, parkedAt };
      if (job.firstAttemptAt !== undefined) entry.firstAttemptAt = job.firstAttemptAt;
      if (error !== undefined) entry.code = error.code;
      // A restart must not shorten the vendor's Retry-After: the destination's pause holds too.
      const due = notBefore(job);
      if (due !== undefined && due > parkedAt) entry.notBefore = due;
      entries.push(entry);
    }
    if (entries.length > 0) options.park(entries, reason, last);
  }

  /**
   * Last-resort guard for a promise chain that should never reject (a sender that throws, a bug
   * in the chain): reported against the batch instead of floating away unhandled.
   */
  function track(promise: Promise<void>, job: Job): void {
    promise
      .catch(() => {
        inFlight.delete(job);
        rechecking.delete(job);
        report({ destinationId, messageIds: ids(job), outcome: 'failed', attempt: job.attempts, reason: 'internal_error', error: errorCodeOf(InternalError), durationMs: 0 });
        release(job);
        onChange();
      })
      .catch(() => {
        // report() and settle() must not throw; this only satisfies the "no floating promise" rule.
      });
  }

  return {
    submit(batch) {
      // Consent is re-checked before every send, the first one included: a revocation committed
      // while the event lingered in its batch or waited for a request slot wins.
      recheckThenQueue({ destination, batch, attempts: 0 });
    },
    setDestination(d) {
      destination = d;
    },
    dispatch,
    parkWaiting() {
      const waiting = [...awaitingRetry];
      awaitingRetry.clear();
      const jobs = [...ready.splice(0), ...waiting];
      if (jobs.length > 0) park(jobs, 'shutdown');
      for (const job of inFlight) job.abort?.abort();
    },
    parkLate(deadline) {
      const late = [...awaitingRetry].filter((j) => (notBefore(j) ?? 0) > deadline);
      for (const j of late) awaitingRetry.delete(j);
      // Ready jobs held by a pause that outlasts the budget cannot go out either.
      if ((gate.pausedUntil(destinationId) ?? 0) > deadline) late.push(...ready.splice(0));
      if (late.length === 0) return false;
      park(late, 'shutdown');
      return true;
    },
    get busy() {
      return ready.length > 0 || inFlight.size > 0 || awaitingRetry.size > 0 || rechecking.size > 0;
    },
    stats() {
      return { ready: ready.length, inFlight: inFlight.size, awaitingRetry: awaitingRetry.size };
    },
    close() {
      gate.clear();
    },
  };
}
