import type { Logger } from 'pino';
import type { PendingQueue } from './consent/pending.ts';
import type { CategorySignal } from './consent/merge.ts';
import type { ConsentResolver } from './consent/resolve.ts';
import type { ConsentSource, LookupOutcome } from './consent/upstream/source.ts';
import { classifyOutcome, createHeldRetry, type HeldRetry } from './consent/held-retry.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import type { RequestSignals } from './consent/signals.ts';
import type { ConsentState } from './consent/state.ts';
import { bodyText, type BoundDestination, type RenderedEvent, type VendorRequest } from './destinations/types.ts';
import type { Event } from './ingest/event.ts';
import { truncateIp } from './destinations/mapping/ip.ts';
import { incrementer, type Metrics } from './observability/metrics.ts';
import { maskRequest } from './observability/mask.ts';
import { createRateLimitedLog } from './observability/rate-limited-log.ts';
import { scrubPii } from './observability/pii.ts';
import { decide, type DataControlMode, type Decision, type PolicyDestination } from './policy/decide.ts';

/** One configured destination, ready to use: its policy view and its bound template. */
export interface RuntimeDestination {
  policy: PolicyDestination;
  bound: BoundDestination;
  /** Log the rendered request instead of sending it. */
  dryRun: boolean;
  /** Render with the IP truncated (IPv4 /24, IPv6 /48); absent: false. */
  truncateIp?: boolean;
}

export interface Evaluation {
  destinationId: string;
  decision: Decision;
  /** Present when the decision is forward or redact. */
  rendered?: RenderedEvent;
}

/** The delivery side as the pipeline sees it (the seam a durable outbox plugs into). */
export interface DeliverySink {
  /**
   * False when refused (queue full); the event is then counted as dropped, never silently lost.
   * `origin` says whose event it is and when it arrived, for the consent recheck before a retry.
   */
  enqueue(dest: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>, origin?: EventOrigin): boolean;
}

export interface EventOrigin {
  /** The event itself (the journal tracks it by identity). */
  event: Event;
  visitorId: string | undefined;
  /** The event's `userId`: consent stored for the user binds its events too. */
  userId: string | undefined;
  /** The event's `receivedAt` (ISO 8601), read only by a sink that needs it. */
  receivedAt: string;
}

export interface HeldEvent {
  event: Event;
  signals: RequestSignals;
  /** The destinations whose decision waits for this visitor's consent. */
  destinationIds: readonly string[];
}

export interface PipelineDeps {
  site: { dataControlMode: DataControlMode };
  resolver: ConsentResolver;
  /** Consent the hit does not carry (the upstream verify API); absent: none. */
  upstream?: ConsentSource | undefined;
  now: () => Date;
  destinations: readonly RuntimeDestination[];
  delivery: DeliverySink;
  pending: PendingQueue<HeldEvent>;
  metrics: Metrics;
  log: Logger;
  /**
   * A destination is done with the event without the delivery (a policy or render drop, a dry run,
   * a held event given up): the journal finishes a hit once every destination is done with it.
   */
  settle?: (event: Event, destinationId: string) => void;
  /**
   * The event waits for consent for these destinations until `deadline` (on the pending queue's
   * clock), held for `reason`: the journal keeps the hold, so a restart resumes it, never longer.
   */
  held?: (event: Event, destinationIds: readonly string[], deadline: number, reason: string) => void;
  /**
   * The destination's queue was full: with a journal the event is kept and handed back later
   * (the caller decides when) rather than dropped after its acknowledgement. Absent: dropped.
   */
  requeue?: (event: Event, signals: RequestSignals, destinationId: string) => void;
  /**
   * Timers of held events waiting out the upstream (src/consent/held-retry.ts), and the time a
   * resumed hold's deadline is read on; default the system clock. Give it the verify client's
   * clock (the waits are read from that client), which is the pending queue's too.
   */
  clock?: Clock;
}

export interface Pipeline {
  /**
   * Consent, policy and rendering for every destination; sends nothing and asks nobody (an
   * upstream answer is used only when cached). Used by explain.
   */
  evaluate(event: Event, signals: RequestSignals): { consent: ConsentState; evaluations: Evaluation[] };
  /**
   * Decide and hand each outcome on: delivery queue, pending queue, or a counted drop. A
   * destination the hit leaves undecided (its categories unknown) waits in the pending queue
   * while the upstream is asked, and is decided when the answer comes.
   * `only`: just these destinations (a hit resumed from the journal). `holdUntil`: the deadline of
   * a hold resumed from the journal: the event may wait for consent until then and not after;
   * once it has passed, the destinations are dropped as `consent_unresolved`, undecided.
   */
  process(event: Event, signals: RequestSignals, requestConsent?: ConsentState, only?: ReadonlySet<string>, holdUntil?: number): void;
  /**
   * Re-decides what waits for this visitor with `signal`. A failure the upstream can recover from
   * (a 429, a 5xx, a timeout, an open circuit, no budget) keeps the events of `whenUnknown: hold`
   * destinations waiting, to be asked again when the upstream allows; any other failure drops them.
   */
  release(visitorId: string, outcome: { signal: CategorySignal } | LookupOutcome): void;
  /** The visitor's consent changed (a push, an import): asks again for the events waiting for it. */
  recheck(visitorId: string): void;
  /** Resolves when no upstream lookup started by `process` is in flight (or at the deadline). */
  settled(deadlineMs: number): Promise<void>;
  /** Stops asking again for held events (shutdown); what still waits stays in the pending queue. */
  close(): void;
}

/** Policy drops logged per destination and reason within each interval (the rest are counted on the next line). */
const DROP_LOG_LINES = 10;
const DROP_LOG_INTERVAL_MS = 60_000;

/** Reasons that mean "nothing known about a required category": the upstream may know. */
function awaitsResolution(decision: Decision): boolean {
  let unknown = false;
  for (const r of decision.reasons) {
    if (r.startsWith('integrations_')) return false;
    if (r.startsWith('consent_unknown:') || r.startsWith('opt_out_no_signal:')) unknown = true;
  }
  return unknown;
}

/** The spine of Tagwarden: event → consent → policy per destination → template → delivery. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { site, destinations, delivery, pending, metrics, log, resolver, upstream } = deps;
  const clock = deps.clock ?? systemClock;
  const byId = new Map(destinations.map((d) => [d.policy.id, d]));
  const lookups = incrementer(metrics.consentLookups, ['result']);
  const inFlight = new Set<Promise<void>>();
  // A policy drop is Tagwarden doing what the consent and the config say, not a fault: logged at
  // info, rate-limited per destination and reason (docs/policy.md), with no event data.
  const dropLog = createRateLimitedLog({ log, maxPerInterval: DROP_LOG_LINES, intervalMs: DROP_LOG_INTERVAL_MS, now: () => deps.now().getTime() });
  function logDrop(destination: string, reason: string, messageId: string): void {
    dropLog('info', `${destination}\u0000${reason}`, { destination, reason, messageId }, 'event dropped by policy');
  }

  function cachedSignal(signals: RequestSignals): CategorySignal | undefined {
    const visitor = signals.visitor?.id;
    return upstream === undefined || visitor === undefined ? undefined : upstream.cached(visitor);
  }

  function render(d: RuntimeDestination, event: Event, decision: Decision): Evaluation {
    if (decision.outcome !== 'forward' && decision.outcome !== 'redact') return { destinationId: d.policy.id, decision };
    return { destinationId: d.policy.id, decision, rendered: d.bound.render(d.truncateIp === true ? withTruncatedIp(event) : event, decision.redactions) };
  }

  function evaluate(event: Event, signals: RequestSignals): { consent: ConsentState; evaluations: Evaluation[] } {
    const cached = cachedSignal(signals);
    const consent = resolver.fromRequest(event, signals, deps.now(), cached === undefined ? [] : [cached]);
    const evaluations = destinations.map((d) => render(d, event, decide(event.integrations, consent, d.policy, site.dataControlMode)));
    return { consent, evaluations };
  }

  const decisions = incrementer(metrics.decisions, ['destination', 'outcome', 'reason']);
  function count(destination: string, outcome: string, reason: string): void {
    decisions([destination, outcome, reason]);
  }
  const settle = deps.settle ?? ((): void => undefined);

  /** An event's approximate size in the pending queue's byte bound. */
  function sizeOf(event: Event): number {
    try {
      return JSON.stringify(event).length;
    } catch {
      return 1024;
    }
  }

  function unresolved(event: Event, destinationIds: Iterable<string>): void {
    for (const id of destinationIds) {
      count(id, 'drop', 'consent_unresolved');
      logDrop(id, 'consent_unresolved', event.messageId);
      settle(event, id);
    }
  }

  /** Held until `holdUntil` at the latest (a resumed hold), else for the pending queue's maxAgeMs. */
  function hold(key: string, held: HeldEvent, reason: string, holdUntil: number | undefined): void {
    const deadline = pending.add(key, held, sizeOf(held.event), holdUntil);
    if (deadline === undefined) {
      unresolved(held.event, held.destinationIds);
      return;
    }
    for (const id of held.destinationIds) count(id, 'hold', reason);
    deps.held?.(held.event, held.destinationIds, deadline, reason);
  }

  function handle(d: RuntimeDestination, event: Event, signals: RequestSignals, decision: Decision, holdUntil?: number): void {
    const { rendered } = render(d, event, decision);
    const id = d.policy.id;
    const reason = decision.reasons[decision.reasons.length - 1] ?? 'none';
    if (decision.outcome === 'drop') {
      count(id, 'drop', reason);
      logDrop(id, reason, event.messageId);
      settle(event, id);
      return;
    }
    if (decision.outcome === 'hold') {
      hold(signals.visitor?.id ?? event.userId ?? event.messageId, { event, signals, destinationIds: [id] }, reason, holdUntil);
      return;
    }
    if (rendered === undefined || !rendered.ok) {
      // A template that cannot render this event (no mapping, missing required field) is a
      // drop with a reason, not a failure of the hit.
      const why = rendered === undefined ? 'not_rendered' : renderDropReason(rendered);
      count(id, 'drop', why);
      if (rendered !== undefined && !rendered.ok && rendered.kind === 'error') {
        // Rate-limited like the drops: a site sending the same incomplete hit must not flood the log.
        dropLog('warn', `${id}\u0000render_error`, { destination: id, messageId: event.messageId, err: rendered.error.message }, 'render failed');
      }
      settle(event, id);
      return;
    }
    if (d.dryRun) {
      log.info({ destination: id, messageId: event.messageId, dryRun: dryRunView(d.bound, rendered) }, 'dry run: would send');
      count(id, decision.outcome, reason);
      settle(event, id);
      return;
    }
    if (delivery.enqueue(d.bound, rendered, { event, visitorId: signals.visitor?.id, userId: event.userId, receivedAt: event.receivedAt })) count(id, decision.outcome, reason);
    else if (deps.requeue !== undefined) {
      // Acknowledged and journaled: waits for room instead of being dropped.
      count(id, 'hold', 'queue_full');
      deps.requeue(event, signals, id);
    } else {
      count(id, 'drop', 'queue_full');
      settle(event, id);
    }
  }

  function process(event: Event, signals: RequestSignals, requestConsent?: ConsentState, only?: ReadonlySet<string>, holdUntil?: number): void {
    if (holdUntil !== undefined && holdUntil <= clock.now()) {
      // A hold that ran out while the process was down: what it waited for is not asked again now.
      unresolved(event, only ?? destinations.map((d) => d.policy.id));
      return;
    }
    const visitor = signals.visitor?.id;
    const cached = cachedSignal(signals);
    if (cached !== undefined) lookups(['cache_hit']);
    // The hit's own consent may already be resolved (the visitor cookie needed it at the answer);
    // it is the same computation, so it is reused unless a cached answer joins it.
    const consent = cached === undefined && requestConsent !== undefined ? requestConsent : resolver.fromRequest(event, signals, deps.now(), cached === undefined ? [] : [cached]);
    const waiting: string[] = [];
    for (const d of destinations) {
      // A hit resumed from the journal goes only to the destinations not done with it.
      if (only !== undefined && !only.has(d.policy.id)) continue;
      const decision = decide(event.integrations, consent, d.policy, site.dataControlMode);
      // Nothing known in the hit, nothing cached: ask the upstream before deciding. Until it
      // answers, the destination gets nothing (never forwarded on a miss).
      if (upstream !== undefined && visitor !== undefined && cached === undefined && awaitsResolution(decision)) waiting.push(d.policy.id);
      else handle(d, event, signals, decision, holdUntil);
    }
    if (waiting.length === 0 || upstream === undefined || visitor === undefined) return;
    const before = pending.size;
    hold(visitor, { event, signals, destinationIds: waiting }, 'consent_resolving', holdUntil);
    if (pending.size > before) ask(upstream, visitor);
  }

  /** Visitors with a lookup in flight: their later events join it instead of asking again. */
  const asking = new Set<string>();
  /** Visitors whose consent changed while a lookup was in flight: its answer may predate the change. */
  const stale = new Set<string>();

  // Held events wait out the upstream when it can say when it may be asked again (the verify
  // client's readiness); a source that cannot (the consent store alone) decides at once.
  const readiness = upstream?.readiness?.bind(upstream);
  const reasks = incrementer(metrics.heldReasks, ['phase', 'result']);
  const waits = incrementer(metrics.heldWaits, ['reason']);
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
      const wait = held.destinationIds.filter((id) => byId.get(id)?.policy.whenUnknown === 'hold');
      if (wait.length < held.destinationIds.length) drop.push([held, held.destinationIds.filter((id) => !wait.includes(id))]);
      if (wait.length === 0) return undefined;
      return wait.length === held.destinationIds.length ? held : { ...held, destinationIds: wait };
    });
    for (const [held, ids] of drop) unresolved(held.event, ids);
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
        log.debug({ messageId: held.event.messageId, failure: outcome.failure }, 'consent unresolved');
        unresolved(held.event, held.destinationIds);
        continue;
      }
      const consent = resolver.fromRequest(held.event, held.signals, deps.now(), [outcome.signal]);
      for (const id of held.destinationIds) {
        const d = byId.get(id);
        if (d === undefined) {
          settle(held.event, id); // the destination is gone (a reload): nothing will send it
          continue;
        }
        handle(d, held.event, held.signals, decide(held.event.integrations, consent, d.policy, site.dataControlMode));
      }
    }
  }

  async function settled(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (inFlight.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
      });
      await Promise.race([Promise.allSettled([...inFlight]), timeout]);
      clearTimeout(timer);
    }
  }

  function recheck(visitorId: string): void {
    if (upstream === undefined) return;
    if (asking.has(visitorId)) stale.add(visitorId);
    else if (pending.has(visitorId)) ask(upstream, visitorId);
  }

  function close(): void {
    retry?.close();
  }

  return { evaluate, process, release, recheck, settled, close };
}

/** The event with `context.ip` truncated (an address that cannot be parsed is removed, never sent whole). */
function withTruncatedIp(event: Event): Event {
  const ip = event.context.ip;
  if (ip === undefined) return event;
  const context = { ...event.context };
  const cut = truncateIp(ip);
  if (cut === undefined) delete context.ip;
  else context.ip = cut;
  return { ...event, context };
}

/** The drop reason of an event its template could not render: the skip's own reason, or `render_error`. */
export function renderDropReason(rendered: Extract<RenderedEvent, { ok: false }>): string {
  return rendered.kind === 'skip' ? rendered.reason : 'render_error';
}

/** The request one rendered event would be sent as, secrets masked (dry runs and explain). */
export function previewRequest(bound: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>): VendorRequest {
  return maskRequest(bound.buildRequest(rendered.envelope, [rendered.item]), bound.secretValues);
}

/** What a dry run logs: the request with secrets masked and personal data scrubbed. */
function dryRunView(bound: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>): unknown {
  const req = previewRequest(bound, rendered);
  const text = bodyText(req);
  let body: unknown = text;
  if (text !== undefined) {
    try {
      body = scrubPii(JSON.parse(text));
    } catch {
      body = `[${text.length} characters, not JSON]`;
    }
  }
  return { method: req.method, url: req.url.split('?', 1)[0], headers: Object.keys(req.headers), body };
}
