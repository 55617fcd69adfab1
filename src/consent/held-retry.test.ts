import { describe, expect, it } from 'vitest';
import { classifyOutcome, createHeldRetry, nextStep, type OutcomeKind, type StepInput } from './held-retry.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import type { LookupOutcome } from './upstream/source.ts';
import type { UpstreamReadiness } from './upstream/verify-client.ts';

const T = 1_700_000_000_000;

describe('classifyOutcome', () => {
  it.each<[string, LookupOutcome, OutcomeKind]>([
    ['an answer', { signal: { source: 'upstream', at: 0, categories: { analytics: 'granted' } } }, 'answer'],
    ['"no consent found"', { signal: { source: 'upstream:none', at: Number.NaN, categories: {} } }, 'answer'],
    ['a 429 (rate limited)', { failure: 'upstream_rate_limited', retryAt: T }, 'refused'],
    ['the probe out (rate limited, no time)', { failure: 'upstream_rate_limited' }, 'refused'],
    ['a 5xx (carries its backoff)', { failure: 'upstream_http_error', retryAt: T }, 'refused'],
    ['a 4xx (carries no wait)', { failure: 'upstream_http_error' }, 'final'],
    ['a timeout', { failure: 'upstream_timeout', retryAt: T }, 'refused'],
    ['a network error', { failure: 'upstream_network', retryAt: T }, 'refused'],
    ['an open circuit', { failure: 'upstream_circuit_open', retryAt: T }, 'refused'],
    ['backing off', { failure: 'upstream_backing_off', retryAt: T }, 'refused'],
    ['our budget', { failure: 'upstream_budget_exhausted', retryAt: T }, 'no_room'],
    ['our slot queue', { failure: 'upstream_overloaded' }, 'no_room'],
    ['a malformed body', { failure: 'upstream_malformed' }, 'final'],
    ['an invalid visitor id', { failure: 'upstream_invalid_visitor' }, 'final'],
    ['shutdown', { failure: 'upstream_closed' }, 'final'],
    ['a store error', { failure: 'store_error' }, 'final'],
    ['an internal error', { failure: 'internal_error' }, 'final'],
  ])('%s', (_name, outcome, kind) => {
    expect(classifyOutcome(outcome)).toBe(kind);
  });
});

describe('nextStep', () => {
  const open: UpstreamReadiness = { readyAt: T, probe: false, room: 100 };
  const base: StepInput = { now: T, mode: 'flow', waiting: 10, asking: 0, readiness: open, pollMs: 1000, maxAsking: 4 };
  it.each<[string, Partial<StepInput>, ReturnType<typeof nextStep>]>([
    ['nobody waits: idle', { waiting: 0 }, { do: 'idle' }],
    ['inside a Retry-After window: wake at its end, ask nobody', { readiness: { readyAt: T + 4000, probe: true, room: 100 } }, { do: 'wake', at: T + 4000 }],
    ['a probe of someone else is out: poll', { readiness: { readyAt: undefined, probe: false, room: 0 } }, { do: 'wake', at: T + 1000 }],
    ['window over, after a refusal: one probe', { mode: 'probe' }, { do: 'ask', count: 1, probe: true }],
    ['window over, the gate wants a probe: one probe even in flow', { readiness: { readyAt: T, probe: true, room: 100 } }, { do: 'ask', count: 1, probe: true }],
    ['our probe is out: wait for its outcome', { mode: 'probe', asking: 1 }, { do: 'idle' }],
    ['the gate wants a probe but ours are out: wait for them', { asking: 2, readiness: { readyAt: T, probe: true, room: 100 } }, { do: 'idle' }],
    ['flowing: as many as maxAsking allows', {}, { do: 'ask', count: 4, probe: false }],
    ['flowing: no more than the budget\'s room', { readiness: { readyAt: T, probe: false, room: 2 } }, { do: 'ask', count: 2, probe: false }],
    ['flowing: no more than are waiting', { waiting: 3 }, { do: 'ask', count: 3, probe: false }],
    ['flowing: maxAsking out already: wait for outcomes', { asking: 4 }, { do: 'idle' }],
    ['budget used up: wake when it frees', { readiness: { readyAt: T + 30_000, probe: false, room: 0 } }, { do: 'wake', at: T + 30_000 }],
    ['ready but no room (inconsistent view): poll, never ask', { readiness: { readyAt: T, probe: false, room: 0 } }, { do: 'wake', at: T + 1000 }],
  ])('%s', (_name, input, step) => {
    expect(nextStep({ ...base, ...input })).toEqual(step);
  });
});

describe('createHeldRetry', () => {
  function setup(initial: UpstreamReadiness, opts: { maxAsking?: number; held?: Set<string> } = {}) {
    const clock = new FakeClock(T);
    let readiness = initial;
    const asked: { id: string; at: number }[] = [];
    const reasks: string[] = [];
    const held = opts.held ?? new Set<string>();
    const retry = createHeldRetry({
      clock,
      readiness: () => readiness,
      ask: (id) => asked.push({ id, at: clock.now() }),
      holds: (id) => held.has(id),
      heldCount: () => held.size,
      maxAsking: opts.maxAsking ?? 32,
      onReask: (phase, result) => reasks.push(`${phase}:${result}`),
    });
    const waitFor = (...ids: string[]) => {
      for (const id of ids) {
        held.add(id);
        retry.wait(id);
      }
    };
    return { clock, retry, asked, reasks, held, waitFor, set: (r: UpstreamReadiness) => (readiness = r) };
  }

  it('inside a window nobody is asked; at its end one probe; its answer lets the others follow, oldest first', () => {
    const s = setup({ readyAt: T + 4000, probe: true, room: 100 });
    s.waitFor('a', 'b', 'c');
    s.clock.advance(3999);
    expect(s.asked).toEqual([]);
    s.set({ readyAt: T + 4000, probe: true, room: 100 });
    s.clock.advance(1);
    expect(s.asked).toEqual([{ id: 'a', at: T + 4000 }]);
    // The probe is out: the client's gate has no time to give.
    s.set({ readyAt: undefined, probe: false, room: 0 });
    s.clock.advance(10_000);
    expect(s.asked.map((x) => x.id)).toEqual(['a']);
    s.set({ readyAt: T + 14_000, probe: false, room: 99 });
    s.held.delete('a');
    s.retry.outcome('a', 'answer', 'answer');
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'b', 'c']);
    for (const id of ['b', 'c']) {
      s.held.delete(id);
      s.retry.outcome(id, 'answer', 'answer');
    }
    expect(s.retry.size).toBe(0);
    expect(s.reasks).toEqual(['probe:answer', 'flow:answer', 'flow:answer']);
    expect(s.clock.pendingTimers).toBe(0);
  });

  it('a refused probe waits out the new window, then probes again', () => {
    const s = setup({ readyAt: T, probe: true, room: 100 });
    s.waitFor('a', 'b');
    expect(s.asked.map((x) => x.id)).toEqual(['a']);
    s.set({ readyAt: T + 2000, probe: true, room: 100 });
    s.retry.outcome('a', 'refused', 'upstream_rate_limited');
    s.retry.wait('a');
    expect(s.asked).toHaveLength(1);
    s.clock.advance(1999);
    expect(s.asked).toHaveLength(1);
    s.set({ readyAt: T + 2000, probe: true, room: 100 });
    s.clock.advance(1);
    // Oldest first: the same visitor probes again, alone.
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'a']);
    expect(s.asked[1]!.at).toBe(T + 2000);
    expect(s.reasks).toEqual(['probe:upstream_rate_limited']);
  });

  it('a refusal during the flow goes back to one probe', () => {
    const s = setup({ readyAt: T, probe: false, room: 100 }, { maxAsking: 2 });
    s.waitFor('p');
    s.retry.outcome('p', 'answer', 'answer'); // the probe answered: flow
    s.held.delete('p');
    s.waitFor('a', 'b', 'c', 'd');
    expect(s.asked.map((x) => x.id)).toEqual(['p', 'a', 'b']);
    s.set({ readyAt: T + 5000, probe: true, room: 100 });
    s.retry.outcome('a', 'refused', 'upstream_rate_limited');
    s.retry.wait('a');
    s.retry.outcome('b', 'refused', 'upstream_rate_limited');
    s.retry.wait('b');
    s.set({ readyAt: T + 5000, probe: true, room: 100 });
    s.clock.advance(5000);
    expect(s.asked.map((x) => x.id)).toEqual(['p', 'a', 'b', 'a']);
  });

  it('a visitor whose own failure says "later" is skipped until then; never re-asked at the same instant', () => {
    const s = setup({ readyAt: T, probe: true, room: 100 });
    s.waitFor('a');
    expect(s.asked.map((x) => x.id)).toEqual(['a']);
    // Its failure is replayed by the client (no call) while the upstream itself looks ready.
    s.retry.outcome('a', 'refused', 'upstream_http_error');
    s.retry.wait('a', T + 3000);
    s.held.add('b');
    s.retry.wait('b');
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'b']);
    s.retry.outcome('b', 'refused', 'upstream_http_error');
    s.retry.wait('b');
    // Both wait for their own time: b for the poll (1 s), a for its 3 s.
    expect(s.asked).toHaveLength(2);
    s.clock.advance(999);
    expect(s.asked).toHaveLength(2);
    s.clock.advance(1);
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'b', 'b']);
    s.retry.outcome('b', 'answer', 'answer');
    s.held.delete('b');
    s.clock.advance(1999);
    expect(s.asked).toHaveLength(3);
    s.clock.advance(1);
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'b', 'b', 'a']);
    expect(s.retry.snapshot().visitors).toEqual([{ visitorId: 'a', since: T, asks: 2, notBefore: T + 3000 }]);
  });

  it('a fresh hit\'s answer (not ours) also opens the flow', () => {
    const s = setup({ readyAt: T + 1000, probe: true, room: 100 });
    s.waitFor('a', 'b');
    s.set({ readyAt: T, probe: false, room: 100 });
    s.retry.outcome('someone-else', 'answer', 'answer');
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'b']);
    expect(s.reasks).toEqual([]);
  });

  it('visitors whose events are gone (expired, decided) are forgotten, not asked', () => {
    const s = setup({ readyAt: T + 1000, probe: true, room: 100 });
    s.waitFor('a', 'b');
    s.held.delete('a');
    s.set({ readyAt: T + 1000, probe: true, room: 100 });
    s.clock.advance(1000);
    expect(s.asked.map((x) => x.id)).toEqual(['b']);
    expect(s.retry.size).toBe(1);
  });

  it('a final outcome forgets the visitor (its events were decided)', () => {
    const s = setup({ readyAt: T, probe: true, room: 100 });
    s.waitFor('a', 'b');
    s.held.delete('a');
    s.retry.outcome('a', 'final', 'upstream_malformed');
    expect(s.asked.map((x) => x.id)).toEqual(['a', 'b']);
    expect(s.retry.snapshot().visitors.map((v) => v.visitorId)).toEqual(['b']);
  });

  it('the state is plain data: mode and visitors with times as numbers', () => {
    const s = setup({ readyAt: T + 60_000, probe: true, room: 100 });
    s.waitFor('a');
    s.clock.advance(10);
    s.waitFor('b', 'a');
    const snap = s.retry.snapshot();
    expect(snap).toEqual({ mode: 'probe', visitors: [{ visitorId: 'a', since: T, asks: 0 }, { visitorId: 'b', since: T + 10, asks: 0 }] });
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  it('the visitors remembered stay bounded by what the pending queue holds', () => {
    const s = setup({ readyAt: T + 60_000, probe: true, room: 100 });
    for (let i = 0; i < 5000; i++) {
      s.waitFor(`v${i}`);
      // Only the latest 10 still hold events (the rest expired).
      s.held.delete(`v${i - 10}`);
    }
    expect(s.retry.size).toBeLessThanOrEqual(1024 + 1);
  });

  it('close stops the timer; nothing is asked afterwards', () => {
    const s = setup({ readyAt: T + 1000, probe: true, room: 100 });
    s.waitFor('a');
    expect(s.clock.pendingTimers).toBe(1);
    s.retry.close();
    expect(s.clock.pendingTimers).toBe(0);
    s.set({ readyAt: T, probe: false, room: 100 });
    s.retry.wait('b');
    s.clock.advance(5000);
    expect(s.asked).toEqual([]);
  });
});
