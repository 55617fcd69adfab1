import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/lib/fake-clock.ts';
import { CONSENT, startFakeVerifyServer, type FakeVerifyServer, type VerifyAction } from './fixtures/upstream/fake-verify-server.ts';
import { post, startTagwarden, startVendor, testConfig, upstreamVerify } from './helpers.ts';

/**
 * Held events (`whenUnknown: hold`) wait out the upstream verify API (issue 11): a real fake verify
 * server on 127.0.0.1 answers 429 with Retry-After for a while, then grants some visitors and
 * denies others. Tagwarden, its verify client and the fake's call log all run on one hand-driven
 * clock, so a 4 s Retry-After takes no wall time and every call time can be checked against every
 * window the fake asked for.
 */

const GRANT = { ...CONSENT, categories: { necessary: true, analytics: true, marketing: true, functional: true } };
const DENY = { ...CONSENT, categories: { necessary: true, analytics: false, marketing: false, functional: false } };

describe('held events wait out the upstream', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** What the fake sent, in the order it sent it (calls and the 429 windows they opened). */
  type Log = { kind: 'call'; at: number; visitorId: string } | { kind: 'window'; from: number; until: number };

  async function setup(answer: (visitorId: string, now: number) => VerifyAction, hold: Record<string, unknown> = {}, verify: Record<string, unknown> = {}) {
    const clock = new FakeClock(Date.now());
    const log: Log[] = [];
    const upstream: FakeVerifyServer = await startFakeVerifyServer(
      (hit) => {
        log.push({ kind: 'call', at: hit.at, visitorId: hit.visitorId });
        const action = answer(hit.visitorId, clock.now());
        const ra = 'status' in action && action.status === 429 ? action.headers?.['retry-after'] : undefined;
        if (ra !== undefined) log.push({ kind: 'window', from: hit.at, until: hit.at + Number(ra) * 1000 });
        return action;
      },
      { now: () => clock.now() },
    );
    const forwardedAt: number[] = [];
    const vendor = await startVendor(() => {
      forwardedAt.push(clock.now());
      return { status: 200, body: '{}' };
    });
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { advertising: { saleOrShare: true }, analytics: {} } },
        identity: { visitorId: [{ body: 'anonymousId' }] },
        hold: { maxAgeMs: 60_000, ...hold },
        upstream: {
          verify: upstreamVerify(upstream.url, verify),
        },
        destinations: [
          { id: 'ads', template: 'webhook', settings: { url: `${vendor.url}/ads` }, consent: { categories: ['advertising'], whenUnknown: 'hold' } },
          { id: 'stats', template: 'webhook', settings: { url: `${vendor.url}/stats` }, consent: { categories: ['analytics'] } },
        ],
      }),
      undefined,
      { consentClock: clock },
    );
    cleanup.push(() => upstream.close(), vendor.close, tw.close);
    const delivered = (path: string): string[] =>
      vendor.hits.filter((h) => h.path === path).flatMap((h) => (h.body as { batch: { messageId: string }[] }).batch.map((e) => e.messageId)).sort();
    const send = async (messageId: string, visitor: string): Promise<void> => {
      const r = await post(`${tw.url}/v1/track`, { messageId, event: 'Order Completed', anonymousId: visitor, timestamp: new Date(clock.now()).toISOString() });
      expect(r.status).toBe(200);
    };
    const metric = async (name: string, labels: string): Promise<number> => {
      const text = await (await fetch(`${tw.url}/metrics`)).text();
      return [...text.matchAll(new RegExp(`${name}\\{([^}]*)\\} (\\d+)`, 'g'))].filter((m) => labels.split(',').every((l) => m[1]!.includes(l))).reduce((n, m) => n + Number(m[2]), 0);
    };
    /** Moves the clock in steps, letting lookups and deliveries finish after each. */
    const advance = async (ms: number, stepMs = 500): Promise<void> => {
      for (let t = 0; t < ms; t += stepMs) {
        clock.advance(Math.min(stepMs, ms - t));
        await tw.app.flush(5000);
      }
    };
    const calls = () => log.filter((e) => e.kind === 'call');
    /** Every call the fake received after a 429 it had sent, inside that 429's Retry-After window. */
    const callsInsideWindows = () => {
      const bad: Log[] = [];
      log.forEach((e, i) => {
        if (e.kind !== 'call') return;
        for (const w of log.slice(0, i)) if (w.kind === 'window' && e.at < w.until) bad.push(e);
      });
      return bad;
    };
    return { clock, upstream, vendor, tw, log, forwardedAt, delivered, send, metric, advance, calls, callsInsideWindows };
  }

  it('429 Retry-After for a while, then grants some visitors and denies others: no call inside a window, nothing before the grant, every granted event after it', async () => {
    let grantFrom = Number.POSITIVE_INFINITY;
    const s = await setup((visitor, now) => {
      if (now < grantFrom) return { status: 429, headers: { 'retry-after': '4' }, body: '{"error":"rate limited"}' };
      return { status: 200, body: visitor.startsWith('grant') ? GRANT : DENY };
    });
    const t0 = s.clock.now();
    // The upstream refuses for 6 s: the first call at t0 and the probe at t0 + 4 s both get 429.
    grantFrom = t0 + 6_000;
    const visitors = [...Array.from({ length: 6 }, (_, i) => `grant-${i}`), ...Array.from({ length: 6 }, (_, i) => `deny-${i}`)];
    // The first hit alone, so its 429 is back before any other lookup starts.
    await s.send('grant-0-0', 'grant-0');
    await s.tw.app.flush(5000);
    expect(s.calls()).toHaveLength(1);
    for (const v of visitors) for (let i = v === 'grant-0' ? 1 : 0; i < 15; i++) await s.send(`${v}-${i}`, v);
    await s.tw.app.flush(5000);
    // 180 events held, one call made: every other lookup met the closed gate.
    expect(s.calls()).toHaveLength(1);
    expect(s.tw.app.pending.size).toBe(180);

    await s.advance(3_500);
    expect(s.calls()).toHaveLength(1);
    expect(s.forwardedAt).toEqual([]);
    await s.advance(500);
    // t0 + 4 s: one probe, refused again (another 4 s).
    expect(s.calls().map((c) => c.at - t0)).toEqual([0, 4_000]);
    await s.advance(3_500);
    expect(s.calls()).toHaveLength(2);
    expect(s.forwardedAt).toEqual([]);
    await s.advance(500);
    // t0 + 8 s: one probe, granted; then the eleven other visitors, once each.
    const calls = s.calls();
    expect(calls.slice(2).every((c) => c.at === t0 + 8_000)).toBe(true);
    expect(calls).toHaveLength(2 + 12);
    // The probe is the oldest waiting visitor, alone; the others are asked after its answer (phase flow below).
    expect(calls[2]!.visitorId).toBe('grant-0');
    expect(new Set(calls.slice(2).map((c) => c.visitorId))).toEqual(new Set(visitors));
    expect(s.callsInsideWindows()).toEqual([]);

    const granted = visitors.filter((v) => v.startsWith('grant')).flatMap((v) => Array.from({ length: 15 }, (_, i) => `${v}-${i}`)).sort();
    expect(s.delivered('/ads')).toEqual(granted);
    expect(s.forwardedAt.length).toBeGreaterThan(0);
    expect(s.forwardedAt.every((at) => at >= t0 + 8_000)).toBe(true);
    // `stats` waits for nobody (whenUnknown: drop): it was dropped as unresolved at the first failure, as before.
    expect(s.delivered('/stats')).toEqual([]);
    expect(await s.metric('tagwarden_decisions_total', 'destination="stats",outcome="drop",reason="consent_unresolved"')).toBe(180);
    expect(s.tw.app.pending.size).toBe(0);
    expect(await s.metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_denied:advertising"')).toBe(90);
    expect(await s.metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_unresolved"')).toBe(0);
    expect(await s.metric('tagwarden_held_reasks_total', 'phase="probe",result="upstream_rate_limited"')).toBe(1);
    expect(await s.metric('tagwarden_held_reasks_total', 'phase="probe",result="answer"')).toBe(1);
    expect(await s.metric('tagwarden_held_reasks_total', 'phase="flow",result="answer"')).toBe(11);
    expect(await s.metric('tagwarden_held_waits_total', 'reason="upstream_rate_limited"')).toBeGreaterThanOrEqual(12);
  });

  it('regression: held events were all dropped at the first 429', async () => {
    // Measured before the fix: 429 Retry-After: 4 for a few seconds, then granting; 0 of 180 delivered.
    let grantFrom = Number.POSITIVE_INFINITY;
    const s = await setup((_v, now) => (now < grantFrom ? { status: 429, headers: { 'retry-after': '4' } } : { status: 200, body: GRANT }));
    grantFrom = s.clock.now() + 3_000;
    for (let i = 0; i < 180; i++) await s.send(`r${i}`, `visitor-${i % 9}`);
    await s.tw.app.flush(5000);
    expect(s.delivered('/ads')).toEqual([]);
    await s.advance(4_000);
    expect(s.delivered('/ads')).toHaveLength(180);
    expect(s.callsInsideWindows()).toEqual([]);
  });

  it('events older than hold.maxAgeMs are dropped as consent_unresolved, and their visitor is not asked again', async () => {
    const s = await setup(() => ({ status: 429, headers: { 'retry-after': '20' } }), { maxAgeMs: 5_000 });
    await s.send('old-0', 'visitor-a');
    await s.tw.app.flush(5000);
    await s.send('old-1', 'visitor-a');
    await s.send('old-2', 'visitor-b');
    await s.tw.app.flush(5000);
    expect(s.tw.app.pending.size).toBe(3);
    await s.advance(4_000);
    expect(await s.metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_unresolved"')).toBe(0);
    await s.advance(2_000);
    expect(s.tw.app.pending.size).toBe(0);
    expect(await s.metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_unresolved"')).toBe(3);
    // The window ends at 20 s: nobody holds events any more, so nobody is asked.
    await s.advance(20_000, 2_000);
    expect(s.calls()).toHaveLength(1);
    expect(s.delivered('/ads')).toEqual([]);
  });

  it.each<[string, VerifyAction]>([
    ['a 500', { status: 500 }],
    ['a 503 with Retry-After', { status: 503, headers: { 'retry-after': '2' } }],
    ['a connection reset', { reset: true }],
  ])('%s, then a grant: the held events wait (backoff or Retry-After) and are delivered after the grant', async (_name, failure) => {
    let failing = true;
    const s = await setup(() => (failing ? failure : { status: 200, body: GRANT }));
    for (let i = 0; i < 10; i++) await s.send(`e${i}`, `visitor-${i % 2}`);
    await s.tw.app.flush(5000);
    expect(s.delivered('/ads')).toEqual([]);
    expect(s.tw.app.pending.size).toBe(10);
    failing = false;
    // The default backoff (base 500 ms, full jitter, doubling per failure) and the 503's 2 s both end within 3 s.
    await s.advance(3_000, 250);
    expect(s.delivered('/ads')).toHaveLength(10);
    expect(s.callsInsideWindows()).toEqual([]);
  });

  it('a timeout, then a grant: the held events wait out the backoff and are delivered', async () => {
    let failing = true;
    // The request timer runs on the injected clock; undici's own timeouts (the same 300 ms, real) end a hung request.
    const s = await setup(() => (failing ? { hang: true } : { status: 200, body: GRANT }), {}, { timeoutMs: 300 });
    await s.send('t0', 'visitor-t');
    await s.tw.app.flush(5000);
    expect(await s.metric('tagwarden_consent_lookups_total', 'result="upstream_timeout"')).toBe(1);
    expect(s.tw.app.pending.size).toBe(1);
    failing = false;
    await s.advance(2_000, 250);
    expect(s.delivered('/ads')).toEqual(['t0']);
  });

  it('an open circuit: the held events wait until it half-opens; one probe closes it, then the rest are asked', async () => {
    let failing = true;
    const s = await setup(() => (failing ? { status: 500 } : { status: 200, body: GRANT }), {}, {
      breaker: { minRequests: 2, errorRatio: 1, openMs: 10_000 },
      backoff: { baseMs: 10, maxMs: 100 },
    });
    for (let i = 0; i < 4; i++) {
      await s.send(`c${i}`, `visitor-${i}`);
      await s.tw.app.flush(5000);
      // Past the short backoff (10 ms base), so the next lookup may call: the second 500 opens the circuit.
      await s.advance(50, 50);
    }
    // Two 500s opened the circuit; every lookup since failed fast without a call.
    expect(s.calls()).toHaveLength(2);
    expect(await s.metric('tagwarden_consent_lookups_total', 'result="upstream_circuit_open"')).toBeGreaterThanOrEqual(2);
    const halfOpen = s.calls()[1]!.at + 10_000;
    failing = false;
    await s.advance(halfOpen - s.clock.now() - 1, 1_000);
    expect(s.calls()).toHaveLength(2);
    expect(s.delivered('/ads')).toEqual([]);
    await s.advance(1);
    expect(s.calls().slice(2).map((c) => c.at)).toEqual([halfOpen, halfOpen, halfOpen, halfOpen]);
    // The probe is the oldest visitor; the others follow only after its answer.
    expect(s.calls()[2]!.visitorId).toBe('visitor-0');
    expect(s.delivered('/ads')).toEqual(['c0', 'c1', 'c2', 'c3']);
    expect(await s.metric('tagwarden_held_reasks_total', 'phase="probe",result="answer"')).toBe(1);
    expect(await s.metric('tagwarden_held_reasks_total', 'phase="flow",result="answer"')).toBe(3);
  });

  it('a 4xx is not waited out: the held events are dropped as consent_unresolved, as before', async () => {
    const s = await setup(() => ({ status: 401 }));
    await s.send('x0', 'visitor-x');
    await s.tw.app.flush(5000);
    expect(s.tw.app.pending.size).toBe(0);
    expect(await s.metric('tagwarden_decisions_total', 'destination="ads",outcome="drop",reason="consent_unresolved"')).toBe(1);
  });
});
