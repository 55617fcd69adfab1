import { describe, expect, it } from 'vitest';
import { afterWorkerExit, MAX_RESTART_DELAY_MS, STABLE_MS, type ExitAction, type WorkerExit } from './exit-policy.ts';

const base: WorkerExit = { stopping: false, retired: false, replacing: false, listened: true, started: true, uptimeMs: 1_000, crashes: 0 };

describe('afterWorkerExit', () => {
  const cases: [string, Partial<WorkerExit>, ExitAction][] = [
    ['stopping: nothing', { stopping: true }, { kind: 'none' }],
    ['stopping, even before it listened', { stopping: true, listened: false, started: false }, { kind: 'none' }],
    ['retired by a rolling restart', { retired: true }, { kind: 'none' }],
    ['a rolling restart\'s new worker that never listened: the roll stops, no restart', { replacing: true, listened: false }, { kind: 'none' }],
    ['a rolling restart\'s new worker that had listened: restart', { replacing: true }, { kind: 'restart', delayMs: 500, crashes: 1 }],
    ['first crash: 500 ms', {}, { kind: 'restart', delayMs: 500, crashes: 1 }],
    ['second in a row: 1 s', { crashes: 1 }, { kind: 'restart', delayMs: 1_000, crashes: 2 }],
    ['fifth in a row: 8 s', { crashes: 4 }, { kind: 'restart', delayMs: 8_000, crashes: 5 }],
    ['many in a row: capped', { crashes: 40 }, { kind: 'restart', delayMs: MAX_RESTART_DELAY_MS, crashes: 41 }],
    ['after a stable run the streak restarts', { crashes: 9, uptimeMs: STABLE_MS }, { kind: 'restart', delayMs: 500, crashes: 1 }],
    ['a replacement that never listened, after the start: backoff', { listened: false, crashes: 2 }, { kind: 'restart', delayMs: 2_000, crashes: 3 }],
    ['first start, never listened: give up', { listened: false, started: false }, { kind: 'give_up' }],
    ['first start, had listened: restart', { started: false }, { kind: 'restart', delayMs: 500, crashes: 1 }],
  ];
  it.each(cases)('%s', (_name, over, want) => {
    expect(afterWorkerExit({ ...base, ...over })).toEqual(want);
  });
});
