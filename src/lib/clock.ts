/**
 * The time source delivery uses for linger timers, retry timers and elapsed-time checks.
 * Injected so tests can drive time deterministically (vi.useFakeTimers or a hand-rolled clock).
 */
/** Opaque: Node returns a Timeout object, other runtimes and fake clocks a number or object. */
export type TimerHandle = object | number;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Node's setTimeout fires immediately (with a warning) for delays above 2^31-1 ms, so every
 * timer delivery arms is clamped to this; callers validate their own bounds against it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The real clock. The globals are looked up at call time, not captured at import, so
 * vi.useFakeTimers() installed after import still takes effect.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS)),
  clearTimeout: (handle) => {
    globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>);
  },
};
