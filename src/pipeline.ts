import type { Logger } from 'pino';
import type { PendingQueue } from './consent/pending.ts';
import type { ConsentResolver } from './consent/resolve.ts';
import type { RequestSignals } from './consent/signals.ts';
import type { ConsentState } from './consent/state.ts';
import { bodyText, type BoundDestination, type RenderedEvent, type VendorRequest } from './destinations/types.ts';
import type { Event } from './ingest/event.ts';
import { incrementer, type Metrics } from './observability/metrics.ts';
import { maskRequest } from './observability/mask.ts';
import { scrubPii } from './observability/pii.ts';
import { decide, type DataControlMode, type Decision, type PolicyDestination } from './policy/decide.ts';

/** One configured destination, ready to use: its policy view and its bound template. */
export interface RuntimeDestination {
  policy: PolicyDestination;
  bound: BoundDestination;
  /** Log the rendered request instead of sending it. */
  dryRun: boolean;
}

export interface Evaluation {
  destinationId: string;
  decision: Decision;
  /** Present when the decision is forward or redact. */
  rendered?: RenderedEvent;
}

/** The delivery side as the pipeline sees it (the seam a durable outbox plugs into). */
export interface DeliverySink {
  /** False when refused (queue full); the event is then counted as dropped, never silently lost. */
  enqueue(dest: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>): boolean;
}

export interface HeldEvent {
  event: Event;
  signals: RequestSignals;
  destinationId: string;
}

export interface PipelineDeps {
  site: { dataControlMode: DataControlMode };
  resolver: ConsentResolver;
  now: () => Date;
  destinations: readonly RuntimeDestination[];
  delivery: DeliverySink;
  pending: PendingQueue<HeldEvent>;
  metrics: Metrics;
  log: Logger;
}

export interface Pipeline {
  /** Consent, policy and rendering for every destination; sends nothing. Used by explain too. */
  evaluate(event: Event, signals: RequestSignals): { consent: ConsentState; evaluations: Evaluation[] };
  /** Evaluate, then hand each outcome on: delivery queue, pending queue, or a counted drop. */
  process(event: Event, signals: RequestSignals): void;
}

/** The spine of Tagwarden: event → consent → policy per destination → template → delivery. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { site, destinations, delivery, pending, metrics, log, resolver } = deps;

  function evaluate(event: Event, signals: RequestSignals): { consent: ConsentState; evaluations: Evaluation[] } {
    const consent = resolver.fromRequest(event, signals, deps.now());
    const evaluations = destinations.map((d): Evaluation => {
      const decision = decide(event.integrations, consent, d.policy, site.dataControlMode);
      if (decision.outcome !== 'forward' && decision.outcome !== 'redact') return { destinationId: d.policy.id, decision };
      return { destinationId: d.policy.id, decision, rendered: d.bound.render(event, decision.redactions) };
    });
    return { consent, evaluations };
  }

  const decisions = incrementer(metrics.decisions, ['destination', 'outcome', 'reason']);
  function count(destination: string, outcome: string, reason: string): void {
    decisions([destination, outcome, reason]);
  }

  function process(event: Event, signals: RequestSignals): void {
    const { evaluations } = evaluate(event, signals);
    for (let i = 0; i < evaluations.length; i++) {
      const ev = evaluations[i]!;
      const dest = destinations[i]!;
      const { decision, rendered } = ev;
      const reason = decision.reasons[decision.reasons.length - 1] ?? 'none';
      if (decision.outcome === 'drop') {
        count(ev.destinationId, 'drop', reason);
        continue;
      }
      if (decision.outcome === 'hold') {
        const key = signals.visitor?.id ?? event.userId ?? event.messageId;
        if (pending.add(key, { event, signals, destinationId: ev.destinationId })) count(ev.destinationId, 'hold', reason);
        else count(ev.destinationId, 'drop', 'consent_unresolved');
        continue;
      }
      if (rendered === undefined || !rendered.ok) {
        // A template that cannot render this event (no mapping, missing required field) is a
        // drop with a reason, not a failure of the hit.
        const why = rendered === undefined ? 'not_rendered' : renderDropReason(rendered);
        count(ev.destinationId, 'drop', why);
        if (rendered !== undefined && !rendered.ok && rendered.kind === 'error') {
          log.warn({ destination: ev.destinationId, messageId: event.messageId, err: rendered.error.message }, 'render failed');
        }
        continue;
      }
      if (dest.dryRun) {
        log.info({ destination: ev.destinationId, messageId: event.messageId, dryRun: dryRunView(dest.bound, rendered) }, 'dry run: would send');
        count(ev.destinationId, decision.outcome, reason);
        continue;
      }
      if (delivery.enqueue(dest.bound, rendered)) count(ev.destinationId, decision.outcome, reason);
      else count(ev.destinationId, 'drop', 'queue_full');
    }
  }

  return { evaluate, process };
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
