import type { Logger } from 'pino';
import type { RequestSignals } from '../consent/signals.ts';
import type { Event } from '../ingest/event.ts';
import type { Decision } from '../policy/decide.ts';
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
    if (decision.outcome === 'drop') {
      outcomes.drop(id, label, event);
      return { outcome: 'drop', reason: label };
    }
    if (decision.outcome === 'hold') {
      const held = deps.hold(signals.visitor?.id ?? event.userId ?? event.messageId, { event, signals, destinationIds: [id] }, label, holdUntil);
      return held ? { outcome: 'hold', reason: label } : undefined;
    }
    const evaluation = render(d, event, decision);
    if (evaluation.decision.outcome === 'drop') {
      // A vendor rule the rendered event breaks (src/pipeline/render.ts): a drop with its reason.
      outcomes.drop(id, evaluation.decision.metricLabel, event);
      return { outcome: 'drop', reason: evaluation.decision.metricLabel };
    }
    const { rendered } = evaluation;
    if (rendered === undefined || !rendered.ok) {
      // A template that skips this event (no mapping, a skip rule) drops it with a reason; one that
      // cannot render it (a missing required field) fails it: not sent, for a fault to fix rather
      // than by the policy. Neither fails the hit.
      const reason = rendered === undefined ? 'not_rendered' : renderDropReason(rendered);
      const outcome = rendered === undefined || rendered.kind === 'error' ? 'failed' : 'drop';
      outcomes.count(id, outcome, reason, event);
      if (rendered !== undefined && rendered.kind === 'error') outcomes.renderError(id, event, rendered.error);
      outcomes.settle(event, id);
      return { outcome, reason };
    }
    if (d.dryRun) {
      log.info({ destination: id, messageId: event.messageId, dryRun: dryRunView(d.bound, rendered) }, 'dry run: would send');
      outcomes.count(id, decision.outcome, label, event);
      outcomes.settle(event, id);
      return { outcome: decision.outcome, reason: label };
    }
    if (delivery.enqueue(d.bound, rendered, { event, visitorId: signals.visitor?.id, userId: event.userId, receivedAt: event.receivedAt })) {
      outcomes.count(id, decision.outcome, label, event);
      return { outcome: decision.outcome, reason: label };
    }
    if (deps.requeue !== undefined) {
      // Acknowledged and journaled: waits for room instead of being dropped (one hold, however
      // many times it is tried again; its final decision is counted when the queue takes it).
      outcomes.hold(id, 'queue_full', event);
      deps.requeue(event, signals, id);
      return { outcome: 'hold', reason: 'queue_full' };
    }
    outcomes.count(id, 'failed', 'queue_full', event);
    outcomes.settle(event, id);
    return { outcome: 'failed', reason: 'queue_full' };
  };
}
