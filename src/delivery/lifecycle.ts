/**
 * The flush and close lifecycle of delivery. Delivery is `open` (batches linger, retries wait
 * their turn), `flushing` (a flush with a budget: everything goes out now, and what cannot make
 * the deadline is parked at once) or `parking` (the deadline passed, or close: nothing is sent any
 * more, everything still held is parked with reason `shutdown`).
 *
 * A flush or close waits until nothing is held any more (`busy`), looking again whenever jobs
 * move (`changed`). Drains run one after the other, never interleaved: a close called during a
 * flush starts once the flush is over. Time (the deadline) comes from the injected clock.
 */
import { InternalError } from '../errors.ts';
import { MAX_TIMER_MS, type Clock, type TimerHandle } from '../lib/clock.ts';

export type DeliveryMode = 'open' | 'flushing' | 'parking';

export interface LifecycleOptions {
  clock: Clock;
  /** A flush begins: close every open batch and start what is ready. */
  startFlush: () => void;
  /** Parking begins: close every open batch, park what waits, abort what is in flight. */
  startParking: () => void;
  /** While flushing: park what cannot go out before `deadline`; true when it parked anything. */
  parkLate: (deadline: number) => boolean;
  /** Whether anything is still held: open batches, jobs, park calls in flight. */
  busy: () => boolean;
  /** The outbox's refusals since the last call (parker.ts). */
  takeParkErrors: () => unknown[];
}

export interface Lifecycle {
  readonly mode: DeliveryMode;
  /** close() was called: new events are refused. */
  readonly closed: boolean;
  /** Jobs moved: a pending drain parks what cannot make its deadline, and resolves once idle. */
  changed(): void;
  /**
   * Sends everything pending now, waits for it within `budgetMs`, then parks what is left.
   * Rejects (after all of that) when the outbox refused some entries.
   */
  flush(budgetMs: number): Promise<void>;
  /** Refuses new events, parks everything at once, then runs `finish` (not when the outbox refused). */
  close(finish: () => void): Promise<void>;
}

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { clock } = options;
  let mode: DeliveryMode = 'open';
  let closed = false;
  let deadline = Infinity;
  let idleWaiter: (() => void) | undefined;
  let draining: Promise<void> | undefined;

  function changed(): void {
    if (!idleWaiter) return;
    const parkedLate = mode === 'flushing' && options.parkLate(deadline);
    if (parkedLate || options.busy()) return;
    const resolve = idleWaiter;
    idleWaiter = undefined;
    resolve();
  }

  function enterParking(): void {
    mode = 'parking';
    options.startParking();
    changed();
  }

  /** One drain: with a budget a flush, without one a close. */
  async function drain(budgetMs: number | undefined): Promise<void> {
    options.takeParkErrors();
    const idle = new Promise<void>((resolve) => {
      idleWaiter = resolve;
    });
    let deadlineTimer: TimerHandle | undefined;
    if (budgetMs === undefined) {
      enterParking();
    } else {
      if (mode === 'open') mode = 'flushing';
      deadline = clock.now() + budgetMs;
      deadlineTimer = clock.setTimeout(enterParking, Math.min(Math.max(0, budgetMs), MAX_TIMER_MS));
      options.startFlush();
      changed();
    }
    await idle;
    if (deadlineTimer !== undefined) clock.clearTimeout(deadlineTimer);
    deadline = Infinity;
    if (!closed) mode = 'open';
    const errors = options.takeParkErrors();
    if (errors.length > 0) {
      throw new InternalError(`outbox refused ${errors.length} park call(s)`, { cause: errors[0], details: { count: errors.length } });
    }
  }

  function serialised(run: () => Promise<void>): Promise<void> {
    const previous = draining ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    draining = next;
    const clear = (): void => {
      if (draining === next) draining = undefined;
    };
    // Both handlers given: this derived promise cannot reject, so it does not float.
    next.then(clear, clear);
    return next;
  }

  return {
    get mode() {
      return mode;
    },
    get closed() {
      return closed;
    },
    changed,
    flush(budgetMs) {
      return serialised(() => drain(budgetMs));
    },
    close(finish) {
      closed = true;
      return serialised(async () => {
        await drain(undefined);
        finish();
      });
    },
  };
}
