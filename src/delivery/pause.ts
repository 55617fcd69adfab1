/**
 * The pause gate: when a vendor answers with a `Retry-After`, no request to that destination may
 * start before the time it asked for, whichever batch the answer was about (RFC 9110 §10.2.3,
 * https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3: the client is asked to wait before its
 * next request, not before repeating that one request).
 *
 * One `pausedUntil` per key (a destination id). A later Retry-After extends the pause, never
 * shortens it: a second answer asking for less does not undo the first one's window. When a pause
 * ends, `onOpen` is called once for its key so the caller can start what waited. Time comes from
 * the injected clock only.
 */
import { MAX_TIMER_MS, type Clock, type TimerHandle } from '../lib/clock.ts';

export interface PauseGateOptions {
  clock: Clock;
  /** Called once when a key's pause is over (not when a pause is extended). */
  onOpen: (key: string) => void;
}

export interface PauseGate {
  /** No request for `key` before `until` (epoch ms). Extends a running pause, never shortens it. */
  pause(key: string, until: number): void;
  /** The end of `key`'s pause when it is paused now, else undefined. */
  pausedUntil(key: string): number | undefined;
  /** Drops every pause and its timer without calling onOpen (shutdown). */
  clear(): void;
}

interface Pause {
  until: number;
  timer: TimerHandle;
}

export function createPauseGate(options: PauseGateOptions): PauseGate {
  const { clock, onOpen } = options;
  const pauses = new Map<string, Pause>();

  function arm(key: string, until: number): TimerHandle {
    // Timers cannot wait longer than MAX_TIMER_MS; a longer pause re-arms when that one fires.
    const wait = Math.min(Math.max(0, until - clock.now()), MAX_TIMER_MS);
    return clock.setTimeout(() => {
      const current = pauses.get(key);
      if (current?.until !== until) return; // superseded by an extension, which has its own timer
      if (clock.now() < until) {
        current.timer = arm(key, until);
        return;
      }
      pauses.delete(key);
      onOpen(key);
    }, wait);
  }

  return {
    pause(key, until) {
      if (!(until > clock.now())) return;
      const current = pauses.get(key);
      if (current !== undefined && current.until >= until) return;
      if (current !== undefined) clock.clearTimeout(current.timer);
      pauses.set(key, { until, timer: arm(key, until) });
    },
    pausedUntil(key) {
      const current = pauses.get(key);
      return current !== undefined && clock.now() < current.until ? current.until : undefined;
    },
    clear() {
      for (const p of pauses.values()) clock.clearTimeout(p.timer);
      pauses.clear();
    },
  };
}
