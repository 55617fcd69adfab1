import { requestIdOf } from '../observability/request-id.ts';
import type { Logger } from 'pino';
import type { RequestSignals } from '../consent/signals.ts';
import type { Event } from '../ingest/event.ts';
import type { Decision } from '../policy/decide.ts';
import type { RenderedEvent } from '../destinations/types.ts';
import { previewRoute } from '../preview/test-mode.ts';
import type { Outcomes } from './outcomes.ts';
import { dryRunView, render, renderDropReason } from './render.ts';
import type { DeliverySink, HeldEvent, JournalHooks, RuntimeDestination } from './types.ts';

/** Holds an event for consent; from ./held.ts. False: the pending queue refused it, and it was dropped as unresolved (receipt included). */
export type Hold = (key: string, held: HeldEvent, reason: string, holdUntil: number | undefined) => boolean;

/**
 * Steps "render" and "hand to delivery" for one destination's decision. Undefined: a hold the
 * pending queue refused, whose final outcome (`consent_unresolved`) was recorded there already.
 */
export type HandOff = (d: RuntimeDestination, event: Event, signals: RequestSignals, decision: Decision, holdUntil?: number) => Settled | undefined;

/** What the hand-off did with the decision (a render or a full queue may turn it into a drop), for the decision receipt. */
export interface Settled {
  outcome: string;
  reason: string;
  /** The event as rendered for the vendor (test mode applied when a preview sends it), for a preview's stream. */
  rendered?: Extract<RenderedEvent, { ok: true }>;
  /** Handed to delivery (a preview's stream says whether its event went out). */
  sent?: boolean;
}

/**
 * A drop is recorded, a hold goes to the pending queue, anything else is rendered and queued for
 * delivery (or logged, for a dry run). Every path ends in exactly one recorded outcome.
 */
export function createHandOff(deps: { delivery: DeliverySink; outcomes: Outcomes; hold: Hold; log: Logger; requeue: JournalHooks['requeue'] }): HandOff {
  const { delivery, outcomes, log } = deps;
  return (d, event, signals, decision, holdUntil) => {
    const id = d.policy.id;
    const label = decision.metricLabel;
    const visitorId = signals.visitor?.id;
    if (decision.outcome === 'drop') {
      outcomes.drop(id, label, event, visitorId);
      return { outcome: 'drop', reason: label };
    }
    if (decision.outcome === 'hold') {
      const held = deps.hold(signals.visitor?.id ?? event.userId ?? event.messageId, { event, signals, destinationIds: [id] }, label, holdUntil);
      return held ? { outcome: 'hold', reason: label } : undefined;
    }
    const evaluation = render(d, event, decision);
    if (evaluation.decision.outcome === 'drop') {
      // A vendor rule the rendered event breaks (src/pipeline/render.ts): a drop with its reason.
      outcomes.drop(id, evaluation.decision.metricLabel, event, visitorId);
      return { outcome: 'drop', reason: evaluation.decision.metricLabel };
    }
    let { rendered } = evaluation;
    if (rendered === undefined || !rendered.ok) {
      // A template that skips this event (no mapping, a skip rule) drops it with a reason; one that
      // cannot render it (a missing required field) fails it: not sent, for a fault to fix rather
      // than by the policy. Neither fails the hit.
      const reason = rendered === undefined ? 'not_rendered' : renderDropReason(rendered);
      const outcome = rendered === undefined || rendered.kind === 'error' ? 'failed' : 'drop';
      outcomes.count(id, outcome, reason, event, visitorId);
      if (rendered !== undefined && rendered.kind === 'error') outcomes.renderError(id, event, rendered.error);
      outcomes.settle(event, id);
      return { outcome, reason };
    }
    // A preview's event (src/preview/, docs/preview.md): decided as usual, then sent with the vendor's
    // test mode in a request of its own, or not at all; such a drop is counted like any other.
    const preview = signals.preview;
    if (preview !== undefined) {
      const route = previewRoute(preview, d.bound, rendered, Date.parse(event.receivedAt));
      if ('drop' in route) {
        outcomes.count(id, 'drop', route.drop, event, visitorId);
        outcomes.settle(event, id);
        return { outcome: 'drop', reason: route.drop, rendered, sent: false };
      }
      rendered = route.send;
    }
    if (d.dryRun) {
      log.info({ requestId: requestIdOf(event), destination: id, messageId: event.messageId, dryRun: dryRunView(d.bound, rendered) }, 'dry run: would send');
      outcomes.count(id, decision.outcome, label, event, visitorId);
      outcomes.settle(event, id);
      return { outcome: decision.outcome, reason: label, rendered, sent: false };
    }
    const queued = delivery.enqueue(d.bound, rendered, { event, visitorId, userId: event.userId, receivedAt: event.receivedAt });
    if (queued === 'queued') {
      outcomes.count(id, decision.outcome, label, event, visitorId);
      return { outcome: decision.outcome, reason: label, rendered, sent: true };
    }
    if (queued === 'queue_full' && deps.requeue !== undefined) {
      // Acknowledged and journaled: waits for room instead of being dropped (one hold, however
      // many times it is tried again; its final decision is counted when the queue takes it).
      outcomes.hold(id, 'queue_full', event, visitorId);
      deps.requeue(event, signals, id);
      return { outcome: 'hold', reason: 'queue_full' };
    }
    // Any other refusal (an event larger than a whole batch, one that cannot be serialised) would be
    // refused the same way every time: final, with its own reason, never tried again. The delivery
    // reported (and the app logged) it once.
    outcomes.count(id, 'failed', queued, event, visitorId);
    outcomes.settle(event, id);
    return { outcome: 'failed', reason: queued };
  };
}
