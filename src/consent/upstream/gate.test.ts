import { describe, expect, it } from 'vitest';
import { UpstreamGate } from './gate.ts';

describe('UpstreamGate', () => {
  it('is open until something defers it', () => {
    const g = new UpstreamGate();
    expect(g.check(0)).toEqual({ ok: true, probe: false });
    expect(g.notBefore).toBeUndefined();
  });

  it('no call before the time, then exactly one probe; its answer opens the gate', () => {
    const g = new UpstreamGate();
    const t = g.acquire(false);
    g.complete(t, { defer: { until: 1_000, reason: 'rate_limited' } });
    expect(g.check(0)).toEqual({ ok: false, reason: 'rate_limited', retryAt: 1_000 });
    expect(g.check(999)).toEqual({ ok: false, reason: 'rate_limited', retryAt: 1_000 });
    const c = g.check(1_000);
    expect(c).toEqual({ ok: true, probe: true });
    const probe = g.acquire(true);
    // While the probe is out, everyone else still waits.
    expect(g.check(1_001)).toEqual({ ok: false, reason: 'rate_limited' });
    g.complete(probe);
    expect(g.check(1_002)).toEqual({ ok: true, probe: false });
    expect(g.notBefore).toBeUndefined();
  });

  it('a probe that is refused again defers again and releases the probe slot', () => {
    const g = new UpstreamGate();
    g.complete(g.acquire(false), { defer: { until: 1_000, reason: 'rate_limited' } });
    const probe = g.acquire(true);
    g.complete(probe, { defer: { until: 5_000, reason: 'rate_limited' } });
    expect(g.check(4_999)).toMatchObject({ ok: false, retryAt: 5_000 });
    expect(g.check(5_000)).toEqual({ ok: true, probe: true });
  });

  it('the later time wins, with its reason', () => {
    const g = new UpstreamGate();
    g.complete(g.acquire(false), { defer: { until: 10_000, reason: 'rate_limited' } });
    g.complete(g.acquire(false), { defer: { until: 500, reason: 'backing_off' } });
    expect(g.check(600)).toEqual({ ok: false, reason: 'rate_limited', retryAt: 10_000 });
    g.complete(g.acquire(false), { defer: { until: 20_000, reason: 'backing_off' } });
    expect(g.check(15_000)).toEqual({ ok: false, reason: 'backing_off', retryAt: 20_000 });
  });

  it('a probe does not open the gate when another call deferred after it left', () => {
    const g = new UpstreamGate();
    const straggler = g.acquire(false); // admitted while the gate was open, still on the wire
    g.complete(g.acquire(false), { defer: { until: 100, reason: 'backing_off' } });
    expect(g.check(100)).toEqual({ ok: true, probe: true });
    const probe = g.acquire(true);
    g.complete(straggler, { defer: { until: 200, reason: 'backing_off' } });
    g.complete(probe);
    expect(g.check(150)).toMatchObject({ ok: false, retryAt: 200 });
    expect(g.check(200)).toEqual({ ok: true, probe: true });
  });

  it('a non-probe success does not open a deferred gate', () => {
    const g = new UpstreamGate();
    const inFlight = g.acquire(false);
    g.complete(g.acquire(false), { defer: { until: 100, reason: 'rate_limited' } });
    g.complete(inFlight);
    expect(g.check(100)).toEqual({ ok: true, probe: true });
  });

  it('an aborted probe releases the slot without opening the gate', () => {
    const g = new UpstreamGate();
    g.complete(g.acquire(false), { defer: { until: 100, reason: 'rate_limited' } });
    g.complete(g.acquire(true), { aborted: true });
    expect(g.check(100)).toEqual({ ok: true, probe: true });
    expect(g.notBefore).toBe(100);
  });
});
