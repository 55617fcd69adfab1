import type { CategorySignal } from '../consent/merge.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import type { Event } from '../ingest/event.ts';
import { incrementer } from '../observability/metrics.ts';
import { dataControlOf, decideDestination } from './decide-destination.ts';
import { createHandOff } from './hand-off.ts';
import { createHeld } from './held.ts';
import { createOutcomes } from './outcomes.ts';
import { render } from './render.ts';
import { createConsentStep } from './resolve.ts';
import type { HeldEvent, Pipeline, PipelineDeps, RuntimeDestination } from './types.ts';
import type { Decision } from '../policy/decide.ts';
import { buildReceipt, type ReceiptContext } from '../receipts/receipt.ts';

/**
 * The spine of Tagwarden, after the accept step (./accept.ts) has read the hit's identity and
 * signals: resolve consent → decide per destination → render → hand to delivery, with the events
 * whose consent is not known yet held (./held.ts) until the upstream answers.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { site, destinations, pending, metrics, log, upstream, clock } = deps;
  const byId = new Map(destinations.map((d) => [d.policy.id, d]));
  const lookups = incrementer(metrics.consentLookups, ['result']);
  const consentStep = createConsentStep({ resolver: deps.resolver, upstream, clock });
  const counted = createOutcomes({ metrics, log, clock, settle: deps.settle });
  const receipts = deps.receipts;
  // The signals of the events decided here, for the receipt of a hold given up (outcomes.unresolved
  // gets the event only) and for a preview's stream.
  const signalsOf = new WeakMap<Event, RequestSignals>();
  const keepSignals = (signals: RequestSignals): boolean => receipts !== undefined || (deps.preview !== undefined && signals.preview !== undefined);
  const outcomes: typeof counted =
    receipts === undefined && deps.preview === undefined
      ? counted
      : {
          ...counted,
          unresolved(event, destinationIds, visitorId) {
            const ids = [...destinationIds];
            counted.unresolved(event, ids, visitorId);
            const signals = signalsOf.get(event);
            for (const id of ids) {
              receipts?.record(buildReceipt(event, signals, id, { outcome: 'drop', reason: 'consent_unresolved' }, undefined, undefined, clock.now()));
              const d = byId.get(id);
              if (signals?.preview !== undefined && d !== undefined) {
                deps.preview?.decided({ mark: signals.preview, destination: d, event, outcome: 'drop', reason: 'consent_unresolved', decision: undefined, consent: undefined, sent: false });
              }
            }
          },
        };
  const held = createHeld({
    pending,
    upstream,
    destinations: byId,
    outcomes,
    metrics,
    log,
    clock,
    held: deps.held,
    redecide,
  });
  const handOffOnly = createHandOff({ delivery: deps.delivery, outcomes, hold: held.hold, log, requeue: deps.requeue });
  /**
   * Hand-off, then the decision's receipt (when receipts are on): one per final decision, and a
   * `held` one when the event begins to wait (never for a hold the queue refused: that is final,
   * `unresolved`, and has its receipt from `outcomes.unresolved`).
   */
  function handOff(d: RuntimeDestination, event: Event, signals: RequestSignals, decision: Decision, ctx: ReceiptContext, holdUntil?: number): void {
    const settled = handOffOnly(d, event, signals, decision, holdUntil);
    if (settled !== undefined) receipts?.record(buildReceipt(event, signals, d.policy.id, settled, decision, settled.outcome === 'hold' ? { ...ctx, phase: 'held' } : ctx, clock.now()));
    if (signals.preview !== undefined) {
      // A hold the queue refused is final: the stream shows it as the unresolved drop it became.
      const shown = settled ?? { outcome: 'drop', reason: 'consent_unresolved' };
      deps.preview?.decided({ mark: signals.preview, destination: d, event, outcome: shown.outcome, reason: shown.reason, decision, consent: ctx.consent, rendered: settled?.rendered, sent: settled?.sent === true });
    }
  }

  function evaluate(event: Event, signals: RequestSignals): ReturnType<Pipeline['evaluate']> {
    const consent = consentStep.resolve(event, signals, consentStep.cached(signals));
    const dataControl = dataControlOf(site, signals);
    const evaluations = destinations.map((d) => render(d, event, decideDestination(d, event, consent, dataControl.mode)));
    return { consent, evaluations, dataControl };
  }

  /** The upstream answered for a held event: decided with its answer joining the event's own signals. */
  function redecide(h: HeldEvent, signal: CategorySignal): void {
    const consent = consentStep.resolve(h.event, h.signals, signal);
    const choice = dataControlOf(site, h.signals);
    const ctx: ReceiptContext = { consent, mode: choice, joined: signal, phase: 'held_decided' };
    for (const id of h.destinationIds) {
      const d = byId.get(id);
      if (d === undefined) outcomes.settle(h.event, id); // the destination is gone (a reload): nothing will send it
      else handOff(d, h.event, h.signals, decideDestination(d, h.event, consent, choice.mode), ctx);
    }
  }

  function process(event: Event, signals: RequestSignals, requestConsent?: ConsentState, only?: ReadonlySet<string>, holdUntil?: number): void {
    if (keepSignals(signals)) signalsOf.set(event, signals);
    if (holdUntil !== undefined && holdUntil <= clock.now()) {
      // A hold that ran out while the process was down: what it waited for is not asked again now.
      outcomes.unresolved(event, only ?? destinations.map((d) => d.policy.id), signals.visitor?.id);
      return;
    }
    // Resolve.
    const cached = consentStep.cached(signals);
    if (cached !== undefined) lookups(['cache_hit']);
    const consent = consentStep.resolve(event, signals, cached, requestConsent);
    // A hit decided for the first time (not one resumed from the journal): its own consent goes to
    // the profile (without a cached answer joining it, `consent` is the hit's own).
    if (only === undefined) deps.recordHitConsent?.(event, signals, requestConsent ?? (cached === undefined ? consent : undefined));
    const askable = held.canAsk(signals, cached);
    const choice = dataControlOf(site, signals);
    const mode = choice.mode;
    const ctx: ReceiptContext = { consent, mode: choice, joined: cached, phase: 'decided' };
    const waiting: string[] = [];
    const waitingDecisions: Decision[] = [];
    for (const d of destinations) {
      // A hit resumed from the journal goes only to the destinations not done with it.
      if (only !== undefined && !only.has(d.policy.id)) continue;
      // Decide.
      const decision = decideDestination(d, event, consent, mode);
      // Nothing known in the hit, nothing cached: ask the upstream before deciding. Until it
      // answers, the destination gets nothing (never forwarded on a miss).
      if (askable && (decision.awaitsConsent || awaitsStoredTcf(deps, d, signals, consent, decision) || awaitsStoredDenial(d, consent, decision))) {
        waiting.push(d.policy.id);
        waitingDecisions.push(decision);
        if (signals.preview !== undefined) deps.preview?.decided({ mark: signals.preview, destination: d, event, outcome: 'hold', reason: 'consent_resolving', decision, consent, sent: false });
      }
      // Render, hand to delivery.
      else handOff(d, event, signals, decision, ctx, holdUntil);
    }
    // A `held` receipt only once the queue took the event (refused, it is unresolved, with that receipt).
    if (held.askUpstream(event, signals, waiting, holdUntil) && receipts !== undefined) {
      const heldCtx: ReceiptContext = { ...ctx, phase: 'held' };
      waiting.forEach((id, i) => receipts.record(buildReceipt(event, signals, id, { outcome: 'hold', reason: 'consent_resolving' }, waitingDecisions[i], heldCtx, clock.now())));
    }
  }

  return { evaluate, process, release: held.release, recheck: held.recheck, settled: held.settled, close: held.close };
}

/**
 * A destination allowed by a grant dated after the hit's arrival (`late`, src/consent/merge.ts)
 * waits for the consent store like an unknown category: such a grant never overrides a denial,
 * and a revocation stored before the hit is one (issue 13: a client clock never outranks a
 * denial). Once the answer joins the hit's signals the merge decides, and no late grant is asked twice.
 */
function awaitsStoredDenial(d: RuntimeDestination, consent: ConsentState, decision: Decision): boolean {
  return decision.outcome !== 'drop' && d.policy.categories.some((c) => consent.categories[c]?.late === true);
}

/**
 * A destination with a TCF requirement that the hit leaves unchecked (no string of its own, and
 * not `gdpr=0`) waits for the consent store like an unknown category: the visitor's profile may
 * hold a TCF string that binds it (seed seeka-server-side-consent.txt, src/consent/stored-tcf.ts).
 * Only a drop is final without it (a stored string can only narrow what the hit allows).
 */
function awaitsStoredTcf(deps: PipelineDeps, d: RuntimeDestination, signals: RequestSignals, consent: ConsentState, decision: Decision): boolean {
  if (deps.storedTcf !== true || d.policy.tcf === undefined || signals.gdprApplies === false) return false;
  return consent.tcf?.result === undefined && decision.outcome !== 'drop' && decision.reason !== 'data_control_disabled';
}
