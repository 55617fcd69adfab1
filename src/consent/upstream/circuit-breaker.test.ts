import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerOptions, type BreakerOutcome } from './circuit-breaker.ts';

const opts: BreakerOptions = { windowMs: 10_000, minRequests: 4, errorRatio: 0.5, openMs: 5_000 };

/** Runs calls (each admitted and recorded at time t) and returns the state after each. */
function run(b: CircuitBreaker, steps: [number, BreakerOutcome][]): string[] {
  return steps.map(([t, outcome]) => {
    const c = b.check(t);
    if (!c.ok) return `refused:${b.state(t)}`;
    b.record(b.acquire(c.probe), outcome, t);
    return b.state(t);
  });
}

describe('CircuitBreaker transitions', () => {
  it.each<[string, [number, BreakerOutcome][], string[]]>([
    ['one failure does not open it', [[0, 'failure']], ['closed']],
    [
      'below the volume threshold, even 100 % failures keep it closed',
      [[0, 'failure'], [1, 'failure'], [2, 'failure']],
      ['closed', 'closed', 'closed'],
    ],
    [
      'volume reached and ratio reached: open',
      [[0, 'failure'], [1, 'success'], [2, 'success'], [3, 'failure']],
      ['closed', 'closed', 'closed', 'open'],
    ],
    [
      'volume reached but ratio below: closed',
      [[0, 'failure'], [1, 'success'], [2, 'success'], [3, 'success'], [4, 'failure']],
      ['closed', 'closed', 'closed', 'closed', 'closed'],
    ],
    [
      'failures older than the window are forgotten',
      [[0, 'failure'], [1, 'failure'], [2, 'failure'], [10_001, 'failure'], [10_002, 'success']],
      ['closed', 'closed', 'closed', 'closed', 'closed'],
    ],
    [
      'neutral outcomes (429, shutdown) do not count',
      [[0, 'failure'], [1, 'neutral'], [2, 'neutral'], [3, 'failure'], [4, 'neutral']],
      ['closed', 'closed', 'closed', 'closed', 'closed'],
    ],
    [
      'open refuses until the cool-down, then one probe whose success closes',
      [[0, 'failure'], [1, 'failure'], [2, 'failure'], [3, 'failure'], [4, 'success'], [5_002, 'success'], [5_003, 'success']],
      ['closed', 'closed', 'closed', 'open', 'refused:open', 'refused:open', 'closed'],
    ],
    [
      'a failed probe re-opens for another cool-down',
      [[0, 'failure'], [1, 'failure'], [2, 'failure'], [3, 'failure'], [5_003, 'failure'], [10_002, 'success'], [10_003, 'success']],
      ['closed', 'closed', 'closed', 'open', 'open', 'refused:open', 'closed'],
    ],
    [
      'after closing, the window starts empty: one failure does not re-open',
      [[0, 'failure'], [1, 'failure'], [2, 'failure'], [3, 'failure'], [5_003, 'success'], [5_004, 'failure']],
      ['closed', 'closed', 'closed', 'open', 'closed', 'closed'],
    ],
    [
      'a neutral probe leaves it half-open for the next probe',
      [[0, 'failure'], [1, 'failure'], [2, 'failure'], [3, 'failure'], [5_003, 'neutral'], [5_004, 'success']],
      ['closed', 'closed', 'closed', 'open', 'half-open', 'closed'],
    ],
  ])('%s', (_name, steps, expected) => {
    expect(run(new CircuitBreaker(opts), steps)).toEqual(expected);
  });

  it('half-open lets exactly one probe through at a time', () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 1 });
    b.record(b.acquire(false), 'failure', 0);
    expect(b.check(100)).toEqual({ ok: false, retryAt: 5_000 });
    expect(b.check(5_000)).toEqual({ ok: true, probe: true });
    const probe = b.acquire(true);
    expect(b.state(5_001)).toBe('half-open');
    expect(b.check(5_001)).toEqual({ ok: false });
    expect(b.check(9_999)).toEqual({ ok: false });
    b.record(probe, 'success', 6_000);
    expect(b.check(6_001)).toEqual({ ok: true, probe: false });
  });

  it('outcomes of calls admitted before it opened are ignored', () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 1 });
    const straggler = b.acquire(false);
    b.record(b.acquire(false), 'failure', 0);
    expect(b.state(0)).toBe('open');
    b.check(5_000);
    const probe = b.acquire(true);
    // The straggler's success must not close the circuit the probe is testing...
    b.record(straggler, 'success', 5_001);
    expect(b.state(5_001)).toBe('half-open');
    expect(b.check(5_001)).toEqual({ ok: false });
    b.record(probe, 'failure', 5_002);
    expect(b.state(5_002)).toBe('open');
  });

  it('counts the window for metrics', () => {
    const b = new CircuitBreaker(opts);
    run(b, [[0, 'failure'], [5_000, 'success'], [6_000, 'success']]);
    expect(b.window(9_000)).toEqual({ total: 3, failures: 1 });
    expect(b.window(10_000)).toEqual({ total: 2, failures: 0 });
  });

  it.each<[Partial<BreakerOptions>]>([[{ windowMs: 0 }], [{ minRequests: 0 }], [{ minRequests: 1.5 }], [{ errorRatio: 0 }], [{ errorRatio: 1.1 }], [{ openMs: -1 }]])(
    'rejects %j',
    (bad) => {
      expect(() => new CircuitBreaker({ ...opts, ...bad })).toThrow(RangeError);
    },
  );
});
