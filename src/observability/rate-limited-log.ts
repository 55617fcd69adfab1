import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';

/**
 * A log line per occurrence, but at most `maxPerInterval` lines per key (e.g. client and reason)
 * within each `intervalMs`: a sender that keeps sending the same bad event, or a consent setting
 * that drops every event, cannot flood the log. The lines held back are counted, and the next line
 * of the same key says how many (`suppressed`). Time comes from the injected clock.
 *
 * Callers pass field paths, codes and ids, never event values: these lines are about refused or
 * dropped input, which is where personal data would be.
 */
export interface RateLimitedLogOptions {
  log: Logger;
  maxPerInterval: number;
  intervalMs: number;
  /** The app's clock the intervals are measured on. */
  clock: Clock;
  /** Keys tracked at once (default 1000); beyond it, new keys share one overflow key. */
  maxKeys?: number;
}

export type RateLimitedLevel = 'warn' | 'info';

/** Logs `msg` with `fields` at `level`, unless `key` already had its lines in this interval. */
export type RateLimitedLog = (level: RateLimitedLevel, key: string, fields: Record<string, unknown>, msg: string) => void;

interface Window {
  start: number;
  logged: number;
  /** Lines held back since the last line of this key was logged. */
  suppressed: number;
}

const OVERFLOW = '\u0000overflow';

export function createRateLimitedLog(opts: RateLimitedLogOptions): RateLimitedLog {
  const maxKeys = opts.maxKeys ?? 1000;
  const windows = new Map<string, Window>();

  /** Forgets keys whose interval is over and that hold no count (their next line starts afresh). */
  function prune(now: number): void {
    for (const [key, w] of windows) if (w.suppressed === 0 && now - w.start >= opts.intervalMs) windows.delete(key);
  }

  return (level, key, fields, msg) => {
    const now = opts.clock.now();
    let k = key;
    if (!windows.has(k) && windows.size >= maxKeys) {
      prune(now);
      if (windows.size >= maxKeys) k = OVERFLOW;
    }
    let w = windows.get(k);
    if (w === undefined) windows.set(k, (w = { start: now, logged: 0, suppressed: 0 }));
    else if (now - w.start >= opts.intervalMs) {
      w.start = now;
      w.logged = 0;
    }
    if (w.logged >= opts.maxPerInterval) {
      w.suppressed++;
      return;
    }
    w.logged++;
    const line = w.suppressed > 0 ? { ...fields, suppressed: w.suppressed } : fields;
    w.suppressed = 0;
    opts.log[level](line, msg);
  };
}
