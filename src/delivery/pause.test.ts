import { describe, expect, it } from 'vitest';
import { createPauseGate } from './pause.ts';
import { FakeClock } from '../lib/fake-clock.ts';

function setup() {
  const clock = new FakeClock(1_000_000);
  const opened: [string, number][] = [];
  const gate = createPauseGate({ clock, onOpen: (key) => opened.push([key, clock.now()]) });
  return { clock, gate, opened, t0: clock.now() };
}

describe('pause gate', () => {
  it('is open for a key never paused', () => {
    const { gate } = setup();
    expect(gate.pausedUntil('ga4')).toBeUndefined();
  });

  it('holds a key until the time asked for, then opens it once', () => {
    const { clock, gate, opened, t0 } = setup();
    gate.pause('ga4', t0 + 5_000);
    expect(gate.pausedUntil('ga4')).toBe(t0 + 5_000);
    clock.advance(4_999);
    expect(gate.pausedUntil('ga4')).toBe(t0 + 5_000);
    expect(opened).toEqual([]);
    clock.advance(1);
    expect(gate.pausedUntil('ga4')).toBeUndefined();
    expect(opened).toEqual([['ga4', t0 + 5_000]]);
    clock.advance(60_000);
    expect(opened).toHaveLength(1);
  });

  it('a later Retry-After extends the pause; the earlier end does not open it', () => {
    const { clock, gate, opened, t0 } = setup();
    gate.pause('ga4', t0 + 5_000);
    clock.advance(1_000);
    gate.pause('ga4', t0 + 8_000);
    clock.advance(4_000); // t0 + 5 s: the first window is over, the second is not
    expect(gate.pausedUntil('ga4')).toBe(t0 + 8_000);
    expect(opened).toEqual([]);
    clock.advance(3_000);
    expect(opened).toEqual([['ga4', t0 + 8_000]]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a shorter Retry-After never shortens the pause', () => {
    const { clock, gate, opened, t0 } = setup();
    gate.pause('ga4', t0 + 5_000);
    gate.pause('ga4', t0 + 1_000);
    gate.pause('ga4', t0 + 5_000);
    clock.advance(1_000);
    expect(gate.pausedUntil('ga4')).toBe(t0 + 5_000);
    clock.advance(4_000);
    expect(opened).toEqual([['ga4', t0 + 5_000]]);
  });

  it('keys are independent: pausing one destination leaves another open', () => {
    const { clock, gate, opened, t0 } = setup();
    gate.pause('ga4', t0 + 5_000);
    gate.pause('meta', t0 + 2_000);
    expect(gate.pausedUntil('crm')).toBeUndefined();
    clock.advance(2_000);
    expect(gate.pausedUntil('meta')).toBeUndefined();
    expect(gate.pausedUntil('ga4')).toBe(t0 + 5_000);
    clock.advance(3_000);
    expect(opened).toEqual([['meta', t0 + 2_000], ['ga4', t0 + 5_000]]);
  });

  it('a pause ending now or in the past is no pause', () => {
    const { clock, gate, opened, t0 } = setup();
    gate.pause('ga4', t0);
    gate.pause('ga4', t0 - 1);
    gate.pause('ga4', Number.NaN);
    expect(gate.pausedUntil('ga4')).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
    expect(opened).toEqual([]);
  });

  it('a pause longer than a timer can wait re-arms instead of firing early', () => {
    const { clock, gate, opened, t0 } = setup();
    const until = t0 + 2 ** 31 + 10_000;
    gate.pause('ga4', until);
    clock.advance(2 ** 31);
    expect(gate.pausedUntil('ga4')).toBe(until);
    expect(opened).toEqual([]);
    clock.advance(10_000);
    expect(opened).toEqual([['ga4', until]]);
  });

  it('clear() drops pauses and their timers without opening', () => {
    const { clock, gate, opened, t0 } = setup();
    gate.pause('ga4', t0 + 5_000);
    gate.clear();
    expect(gate.pausedUntil('ga4')).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(10_000);
    expect(opened).toEqual([]);
  });
});
