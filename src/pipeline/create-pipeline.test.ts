import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { testConfig } from '../../test/helpers.ts';
import { createPendingQueue } from '../consent/pending.ts';
import { createConsentResolver } from '../consent/resolve.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentSource, LookupOutcome } from '../consent/upstream/source.ts';
import { loadTemplates } from '../destinations/load.ts';
import { resolveDestinations } from '../destinations/resolve.ts';
import type { Event } from '../ingest/event.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { createMetrics } from '../observability/metrics.ts';
import { createPipeline } from './create-pipeline.ts';
import type { HeldEvent } from './types.ts';

const T0 = Date.parse('2026-11-30T12:00:00.000Z');
const config = testConfig({
  site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
  destinations: [{ id: 'stats', template: 'webhook', settings: { url: 'http://127.0.0.1:9/stats' }, consent: { categories: ['analytics'], whenUnknown: 'hold' } }],
});
const destinations = resolveDestinations(config, loadTemplates()).destinations;
const visitor: RequestSignals = { gpc: false, visitor: { id: 'v-1', source: 'body:anonymousId' } };

function event(id: string, prefs?: Record<string, unknown>): Event {
  const at = new Date(T0).toISOString();
  return { messageId: id, type: 'track', event: 'x', timestamp: at, receivedAt: at, context: prefs === undefined ? {} : { consent: { categoryPreferences: prefs } }, properties: {}, traits: {}, integrations: {} };
}

function setup(lookup?: (visitorId: string) => Promise<LookupOutcome>) {
  const clock = new FakeClock(T0);
  const metrics = createMetrics({ defaultMetrics: false });
  const sent: string[] = [];
  const settled: string[] = [];
  const upstream: ConsentSource | undefined =
    lookup === undefined ? undefined : { cached: () => undefined, lookup, invalidate: () => undefined, close: () => Promise.resolve() };
  const pipeline = createPipeline({
    site: config.site,
    resolver: createConsentResolver({ categories: config.site.categories, tcf: config.consent.tcf }),
    upstream,
    destinations,
    delivery: {
      enqueue: (_dest, rendered) => {
        sent.push(rendered.messageId);
        return 'queued';
      },
    },
    pending: createPendingQueue<HeldEvent>({ maxItems: 10, maxAgeMs: 60_000, clock, onExpire: () => undefined }),
    metrics,
    log: pino({ level: 'silent' }),
    settle: (e, id) => settled.push(`${e.messageId}:${id}`),
    clock,
  });
  const series = async (name: string): Promise<string> => (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).sort().join('\n');
  const decisions = (): Promise<string> => series('tagwarden_decisions_total');
  return { pipeline, clock, sent, settled, decisions, series };
}

describe('createPipeline', () => {
  it('counts each outcome under the decision metric label', async () => {
    const { pipeline, sent, settled, decisions } = setup();
    pipeline.process(event('ok', { analytics: true }), visitor);
    pipeline.process(event('no', { analytics: false }), visitor);
    expect(sent).toEqual(['ok']);
    expect(settled).toEqual(['no:stats']);
    expect(await decisions()).toBe(
      [
        'tagwarden_decisions_total{destination="stats",outcome="drop",reason="consent_denied:analytics"} 1',
        'tagwarden_decisions_total{destination="stats",outcome="forward",reason="consent_granted:analytics"} 1',
      ].join('\n'),
    );
  });

  it('holds what awaits consent while the upstream is asked, and decides it with the answer', async () => {
    const { pipeline, sent, decisions, series } = setup(() => Promise.resolve({ signal: { source: 'upstream', at: T0, categories: { analytics: 'granted' } } }));
    pipeline.process(event('held'), visitor);
    expect(sent).toEqual([]);
    await pipeline.settled(1_000);
    expect(sent).toEqual(['held']);
    // Counted once, by its final decision; the hold it went through has its own counts.
    expect(await decisions()).toBe('tagwarden_decisions_total{destination="stats",outcome="forward",reason="consent_granted:analytics"} 1');
    expect(await series('tagwarden_holds_started_total')).toBe('tagwarden_holds_started_total{destination="stats",reason="consent_resolving"} 1');
    expect(await series('tagwarden_held_events')).toBe('tagwarden_held_events{destination="stats"} 0');
  });

  it('an event held again by an answer that leaves it unknown is one hold, and one decision when it is decided', async () => {
    const answers: LookupOutcome[] = [
      { signal: { source: 'store:none', at: T0, categories: {} } },
      { signal: { source: 'store', at: T0, categories: { analytics: 'denied' } } },
    ];
    const { pipeline, decisions, series } = setup(() => Promise.resolve(answers.shift()!));
    pipeline.process(event('twice'), visitor);
    await pipeline.settled(1_000);
    // Still unknown: held (whenUnknown: hold), not decided yet.
    expect(await decisions()).toBe('');
    expect(await series('tagwarden_held_events')).toBe('tagwarden_held_events{destination="stats"} 1');
    pipeline.recheck('v-1');
    await pipeline.settled(1_000);
    expect(await decisions()).toBe('tagwarden_decisions_total{destination="stats",outcome="drop",reason="consent_denied:analytics"} 1');
    expect(await series('tagwarden_holds_started_total')).toBe('tagwarden_holds_started_total{destination="stats",reason="consent_resolving"} 1');
    expect(await series('tagwarden_held_events')).toBe('tagwarden_held_events{destination="stats"} 0');
  });

  it('waits for lookups in flight until the deadline on the injected clock, not the wall clock', async () => {
    const { pipeline, clock } = setup(() => new Promise<LookupOutcome>(() => undefined));
    pipeline.process(event('stuck'), visitor);
    let done = false;
    const waiting = pipeline.settled(1_000).then(() => (done = true));
    await Promise.resolve();
    clock.advance(999);
    await Promise.resolve();
    expect(done).toBe(false);
    clock.advance(1);
    await waiting;
    expect(done).toBe(true);
    // Under the 1 s the wall clock would take.
  }, 800);

  it('drops a resumed hold whose deadline passed, undecided', async () => {
    const { pipeline, sent, settled, decisions } = setup();
    pipeline.process(event('late', { analytics: true }), visitor, undefined, undefined, T0);
    expect(sent).toEqual([]);
    expect(settled).toEqual(['late:stats']);
    expect(await decisions()).toContain('outcome="drop",reason="consent_unresolved"} 1');
  });

  it('evaluate decides and renders without sending or counting', async () => {
    const { pipeline, sent, decisions } = setup();
    const { consent, evaluations } = pipeline.evaluate(event('look', { analytics: true }), visitor);
    expect(consent.categories.analytics?.status).toBe('granted');
    expect(evaluations).toEqual([expect.objectContaining({ destinationId: 'stats', decision: expect.objectContaining({ outcome: 'forward', metricLabel: 'consent_granted:analytics' }), rendered: expect.objectContaining({ ok: true }) })]);
    expect(sent).toEqual([]);
    expect(await decisions()).toBe('');
  });
});
