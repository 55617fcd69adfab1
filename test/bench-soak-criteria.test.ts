// The soak run's rules (bench/soak-report.ts), on made-up samples: the soak itself (npm run soak)
// is not part of npm test.
import { describe, expect, it } from 'vitest';
import { books, flatness, parseMetrics, slope, verdicts, type SoakSample } from '../bench/soak-report.ts';

const sample = (t: number, over: Partial<SoakSample> = {}): SoakSample => ({
  t,
  phase: 'load',
  rssMiB: 200,
  fds: 60,
  heapMiB: 80,
  heapTotalMiB: 100,
  externalMiB: 5,
  lagP99Ms: 12,
  lagMaxMs: 20,
  gcMaxMs: 5,
  queued: 3,
  inFlight: 1,
  awaitingRetry: 0,
  held: 0,
  journalPending: 2,
  journalDead: 0,
  ok: 100,
  non2xx: 0,
  errors: 0,
  p50Ms: 2,
  p99Ms: 9,
  verifyAnswered: 5,
  verify429: 1,
  tagwardenCpu: 0.3,
  benchCpu: 0.1,
  otherCpu: 0.05,
  ...over,
});

describe('flatness', () => {
  it('passes a sawtooth around a level after a warm-up ramp, fails a steady climb', () => {
    const saw = Array.from({ length: 40 }, (_, i) => ({ t: i * 10, v: i < 10 ? 100 + i * 10 : 200 + (i % 3) * 15 }));
    expect(flatness(saw, 0.1, 0)?.flat).toBe(true);
    const climb = Array.from({ length: 40 }, (_, i) => ({ t: i * 10, v: 200 + i * 2 }));
    const f = flatness(climb, 0.1, 0)!;
    expect(f.flat).toBe(false);
    expect(f.slopePerHour).toBeCloseTo(2 * 360, 5);
  });

  it('needs enough samples', () => {
    expect(flatness([{ t: 0, v: 1 }], 0.1, 0)).toBeUndefined();
  });
});

describe('slope', () => {
  it('is the least-squares slope', () => {
    expect(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }])).toBeCloseTo(2, 10);
    expect(slope([{ x: 1, y: 1 }])).toBeNaN();
  });
});

const metrics = (lines: string[]): ReturnType<typeof parseMetrics> => parseMetrics(lines.join('\n'));

describe('books', () => {
  const scrape = metrics([
    '# HELP tagwarden_events_received_total x',
    'tagwarden_events_received_total{client="segment",type="track"} 10',
    'tagwarden_decisions_total{destination="meta",outcome="forward",reason="consent_granted:advertising"} 7',
    'tagwarden_decisions_total{destination="meta",outcome="drop",reason="consent_denied:advertising"} 3',
    'tagwarden_deliveries_total{destination="meta",outcome="delivered"} 6',
    'tagwarden_deliveries_total{destination="meta",outcome="failed"} 1',
    'tagwarden_deliveries_total{destination="meta",outcome="retry_scheduled"} 4',
    'tagwarden_held_events{destination="meta"} 0',
  ]);

  it('balances when every acknowledged hit is delivered, dropped or dead, and the sink took the delivered ones', () => {
    const [b] = books({ destinations: ['meta'], acknowledged: 10, scrape, sinkTook: { meta: 6 } });
    expect(b).toMatchObject({ delivered: 6, dropped: 3, deliveryFailed: 1, gap: 0, identityGap: 0, balanced: true });
  });

  it('does not balance when an event is missing, or the sink saw other than what was counted delivered', () => {
    expect(books({ destinations: ['meta'], acknowledged: 11, scrape, sinkTook: { meta: 6 } })[0]).toMatchObject({ gap: 1, balanced: false });
    expect(books({ destinations: ['meta'], acknowledged: 10, scrape, sinkTook: { meta: 5 } })[0]!.balanced).toBe(false);
  });
});

describe('verdicts', () => {
  const load = Array.from({ length: 40 }, (_, i) => sample(i * 10));
  const drained = sample(410, { phase: 'drain', queued: 0, held: 0, journalPending: 0 });
  const base = { load, afterDrain: drained, drainedAfterS: 2, books: [], refused: 0, errors: 0, hitsBetweenQuarters: 2000 };
  const verdict = (name: string, v: Parameters<typeof verdicts>[0]): boolean => verdicts(v).find((c) => c.name.startsWith(name))!.pass;

  it('passes a steady run', () => {
    expect(verdicts(base).every((c) => c.pass)).toBe(true);
  });

  it('fails a lag spike, a leftover queue, a refused hit and growing FDs', () => {
    expect(verdict('event-loop lag', { ...base, load: load.map((s, i) => (i === 20 ? { ...s, lagP99Ms: 51 } : s)) })).toBe(false);
    expect(verdict('queues back to 0', { ...base, afterDrain: { ...drained, journalPending: 1 } })).toBe(false);
    expect(verdict('every hit answered', { ...base, refused: 1 })).toBe(false);
    expect(verdict('open FDs flat', { ...base, load: load.map((s, i) => ({ ...s, fds: 60 + i })) })).toBe(false);
  });
});
