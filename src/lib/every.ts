/**
 * Repeating work on an injected clock (the Clock of ./clock.ts has timeouts only): a chain of
 * timeouts rather than an interval, so a FakeClock drives it like any other timer. Each timer is
 * unref'd: background upkeep (lease renewals, takeovers) must not keep a process alive by itself.
 */
import type { Clock, TimerHandle } from './clock.ts';

/** Node's timers keep the process alive unless unref'd; fake clocks' handles have no unref. */
export function unrefTimer(handle: TimerHandle): TimerHandle {
  if (typeof handle === 'object' && 'unref' in handle && typeof handle.unref === 'function') (handle as { unref(): void }).unref();
  return handle;
}

/** Calls `fn` every `ms` from now on, until the returned stop is called. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let handle: TimerHandle | undefined;
  const arm = (): void => {
    handle = unrefTimer(
      clock.setTimeout(() => {
        if (handle === undefined) return;
        fn();
        // `fn` may have stopped the chain.
        if (handle !== undefined) arm();
      }, ms),
    );
  };
  arm();
  return () => {
    if (handle !== undefined) clock.clearTimeout(handle);
    handle = undefined;
  };
}
