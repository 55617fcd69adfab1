import { requestIdOf } from '../observability/request-id.ts';
import type { Logger } from 'pino';
import { classifyOutcome, createHeldRetry, type HeldRetry } from '../consent/held-retry.ts';
import type { CategorySignal } from '../consent/merge.ts';
import type { PendingQueue } from '../consent/pending.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentSource, LookupOutcome } from '../consent/upstream/source.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { incrementer, type Metrics } from '../observability/metrics.ts';
import type { Outcomes } from './outcomes.ts';
import type { HeldEvent, JournalHooks, RuntimeDestination } from './types.ts';

/**
 * Held events: what waits for a visitor's consent in the pending queue, the upstream lookups that
 * release it (one in flight per visitor), and the waits when the upstream refuses or fails
 * (src/consent/held-retry.ts). A released event is decided again by `redecide`.
 */
export interface Held {
  /** Held until `holdUntil` at the latest (a resumed hold), else for the pending queue's maxAgeMs; dropped as unresolved when refused (false). */
  hold: (key: string, held: HeldEvent, reason: string, holdUntil: number | undefined) => boolean;
  /** True when the upstream may be asked for this hit's visitor (one is configured, the hit names a visitor, nothing is cached). */
  canAsk: (signals: RequestSignals, cached: CategorySignal | undefined) => boolean;
  /** Holds the event for these destinations while the upstream is asked for the hit's visitor; false when not held (refused: dropped as unresolved). */
  askUpstream: (event: Event, signals: RequestSignals, destinationIds: readonly string[], holdUntil: number | undefined) => boolean;
  release: (visitorId: string, outcome: { signal: CategorySignal } | LookupOutcome) => void;
  recheck: (visitorId: string) => void;
  settled: (deadlineMs: number) => Promise<void>;
  close: () => void;
}

export interface HeldDeps extends Pick<JournalHooks, 'held'> {
  pending: PendingQueue<HeldEvent>;
  upstream: ConsentSource | undefined;
  destinations: ReadonlyMap<string, RuntimeDestination>;
  outcomes: Outcomes;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  /** Decides a released event, for the destinations it waited for, with the upstream's answer joining its signals. */
  redecide: (held: HeldEvent, signal: CategorySignal) => void;
}

/** An event's approximate size in the pending queue's byte bound. */
function sizeOf(event: Event): number {
  try {
    return JSON.stringify(event).length;
  } catch {
    return 1024;
  }
}

export function createHeld(deps: HeldDeps): Held {
  const { pending, upstream, outcomes, log, clock } = deps;
  const lookups = incrementer(deps.metrics.consentLookups, ['result']);
  const reasks = incrementer(deps.metrics.heldReasks, ['phase', 'result']);
  const waits = incrementer(deps.metrics.heldWaits, ['reason']);
  const inFlight = new Set<Promise<void>>();
  /** Visitors with a lookup in flight: their later events join it instead of asking again. */
  const asking = new Set<string>();
  /** Visitors whose consent changed while a lookup was in flight: its answer may predate the change. */
  const stale = new Set<string>();

  // Held events wait out the upstream when it can say when it may be asked again (the verify
  // client's readiness); a source that cannot (the consent store alone) decides at once.
  const readiness = upstream?.readiness?.bind(upstream);
  const retry: HeldRetry | undefined =
    upstream === undefined || readiness === undefined
      ? undefined
      : createHeldRetry({
          clock,
          readiness,
          ask: (visitorId) => ask(upstream, visitorId),
          holds: (visitorId) => pending.has(visitorId),
          heldCount: () => pending.size,
          onReask: (phase, result) => reasks([phase, result]),
        });

  function hold(key: string, held: HeldEvent, reason: string, holdUntil: number | undefined): boolean {
    const deadline = pending.add(key, held, sizeOf(held.event), holdUntil);
    if (deadline === undefined) {
      outcomes.unresolved(held.event, held.destinationIds, held.signals.visitor?.id);
      return false;
    }
    for (const id of held.destinationIds) outcomes.hold(id, reason, held.event, held.signals.visitor?.id);
    deps.held?.(held.event, held.destinationIds, deadline, reason);
    return true;
  }

  /** Asks the upstream for a visitor unless a lookup is in flight; its outcome releases the visitor's events. */
  function ask(source: ConsentSource, visitorId: string): void {
    if (asking.has(visitorId)) return;
    asking.add(visitorId);
    const p: Promise<void> = source
      .lookup(visitorId)
      .finally(() => asking.delete(visitorId))
      .then((outcome) => {
        const result = 'signal' in outcome ? (outcome.signal.source.endsWith(':none') ? 'no_consent' : 'answer') : outcome.failure;
        lookups([result]);
        // A consent change raced the lookup: its answer may be older than the change, ask again.
        if (stale.delete(visitorId) || ('failure' in outcome && outcome.failure === 'upstream_superseded')) ask(source, visitorId);
        else {
          retry?.outcome(visitorId, classifyOutcome(outcome), result);
          release(visitorId, outcome);
        }
      })
      .catch((err: unknown) => {
        log.error({ err }, 'consent lookup failed unexpectedly');
        retry?.outcome(visitorId, 'final', 'internal_error');
        release(visitorId, { failure: 'internal_error' });
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }

  /**
   * The upstream refused or failed, or our budget had no room: the events of destinations whose
   * `whenUnknown` is `hold` keep waiting (their age still counts from when they were first held);
   * the other destinations are dropped as unresolved, as before (their policy does not wait).
   */
  function keepWaiting(visitorId: string, failure: string, retryAt: number | undefined): void {
    const drop: [HeldEvent, string[]][] = [];
    const left = pending.retain(visitorId, (held) => {
      const wait = held.destinationIds.filter((id) => deps.destinations.get(id)?.policy.whenUnknown === 'hold');
      if (wait.length < held.destinationIds.length) drop.push([held, held.destinationIds.filter((id) => !wait.includes(id))]);
      if (wait.length === 0) return undefined;
      return wait.length === held.destinationIds.length ? held : { ...held, destinationIds: wait };
    });
    for (const [held, ids] of drop) outcomes.unresolved(held.event, ids, held.signals.visitor?.id);
    if (left > 0) {
      waits([failure]);
      retry?.wait(visitorId, retryAt);
    }
  }

  function release(visitorId: string, outcome: { signal: CategorySignal } | LookupOutcome): void {
    if ('failure' in outcome && retry !== undefined) {
      const kind = classifyOutcome(outcome);
      if (kind === 'refused' || kind === 'no_room') {
        keepWaiting(visitorId, outcome.failure, outcome.retryAt);
        return;
      }
    }
    for (const held of pending.take(visitorId)) {
      if ('failure' in outcome) {
        // Never consent: a failure waiting cannot mend (a 4xx, a malformed body), or a source
        // that cannot say when to ask again. The events are dropped.
        log.debug({ requestId: requestIdOf(held.event), messageId: held.event.messageId, failure: outcome.failure }, 'consent unresolved');
        outcomes.unresolved(held.event, held.destinationIds, held.signals.visitor?.id);
        continue;
      }
      deps.redecide(held, outcome.signal);
    }
  }

  return {
    hold,
    canAsk: (signals, cached) => upstream !== undefined && signals.visitor !== undefined && cached === undefined,
    askUpstream(event, signals, destinationIds, holdUntil) {
      const visitor = signals.visitor?.id;
      if (destinationIds.length === 0 || upstream === undefined || visitor === undefined) return false;
      if (!hold(visitor, { event, signals, destinationIds }, 'consent_resolving', holdUntil)) return false;
      ask(upstream, visitor);
      return true;
    },
    release,
    recheck(visitorId) {
      if (upstream === undefined) return;
      if (asking.has(visitorId)) stale.add(visitorId);
      else if (pending.has(visitorId)) ask(upstream, visitorId);
    },
    async settled(deadlineMs) {
      const deadline = clock.now() + deadlineMs;
      while (inFlight.size > 0 && clock.now() < deadline) {
        let timer: TimerHandle | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = clock.setTimeout(resolve, Math.max(1, deadline - clock.now()));
        });
        await Promise.race([Promise.allSettled([...inFlight]), timeout]);
        if (timer !== undefined) clock.clearTimeout(timer);
      }
    },
    close() {
      retry?.close();
    },
  };
}
