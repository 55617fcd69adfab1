import type { Logger } from 'pino';
import type { PendingQueue } from '../consent/pending.ts';
import type { CategorySignal } from '../consent/merge.ts';
import type { ConsentResolver } from '../consent/resolve.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import type { ConsentSource, LookupOutcome } from '../consent/upstream/source.ts';
import type { EnqueueResult } from '../delivery/delivery.ts';
import type { BoundDestination, RenderedEvent } from '../destinations/types.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { DataControlMode, Decision, PolicyDestination } from '../policy/decide.ts';
import type { Jurisdiction, ModeChoice } from '../policy/jurisdiction.ts';
import type { ReceiptSink } from '../receipts/receipt.ts';
import type { PreviewMark } from '../preview/types.ts';

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
  /** The vendor rule the rendered event broke, when that turned the decision into a drop (explain shows the field). */
  vendorRule?: { rule: string; path: string };
}

/** The delivery side as the pipeline sees it (the seam a durable outbox plugs into). */
export interface DeliverySink {
  /**
   * `queued`, or the reason it was refused (src/delivery/delivery.ts EnqueueRefusal); the event is
   * then counted as failed with that reason, never silently lost (with a journal, `queue_full` is
   * tried again later instead). `origin` says whose event it is and when it arrived, for the
   * consent recheck before a retry.
   */
  enqueue(dest: BoundDestination, rendered: Extract<RenderedEvent, { ok: true }>, origin?: EventOrigin): EnqueueResult;
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

/** What a destination's decision did with an event, for the journal: hooks the pipeline calls. */
export interface JournalHooks {
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
}

export interface PipelineDeps extends JournalHooks {
  /** The site's mode, and the mode per visitor region (`site.jurisdiction`), which wins where it matches. */
  site: { dataControlMode: DataControlMode; jurisdiction?: Jurisdiction | undefined };
  resolver: ConsentResolver;
  /** Consent the hit does not carry (the consent store, the upstream verify API); absent: none. */
  upstream?: ConsentSource | undefined;
  destinations: readonly RuntimeDestination[];
  /**
   * `upstream` includes the consent store, whose profiles may hold a TCF string: a destination
   * with a TCF requirement the hit leaves unchecked then waits for it (src/consent/stored-tcf.ts).
   */
  storedTcf?: boolean;
  /**
   * Writes the consent a first-processed hit carries to its visitor's profile, off the hit's path
   * (./record-hit-consent.ts, config store.recordHitConsent); absent: not recorded.
   */
  recordHitConsent?: (event: Event, signals: RequestSignals, requestConsent: ConsentState | undefined) => void;
  delivery: DeliverySink;
  /** Where each settled decision's receipt goes (src/receipts/, config receipts.enabled); absent: none. */
  receipts?: ReceiptSink | undefined;
  pending: PendingQueue<HeldEvent>;
  /** Where a preview hit's decisions go (its live stream, src/preview/); absent: preview is off. */
  preview?: PreviewSink | undefined;
  metrics: Metrics;
  log: Logger;
  /**
   * Time of consent resolution (a TCF string's age), of the drop log's rate limit, of held
   * events waiting out the upstream (src/consent/held-retry.ts) and of a resumed hold's deadline.
   * Give it the verify client's clock (the waits are read from that client), which is the pending
   * queue's too.
   */
  clock: Clock;
}

export interface Pipeline {
  /**
   * Consent, policy and rendering for every destination; sends nothing and asks nobody (an
   * upstream answer is used only when cached). Used by explain.
   */
  evaluate(event: Event, signals: RequestSignals): { consent: ConsentState; evaluations: Evaluation[]; dataControl: ModeChoice };
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
  /** Resolves when no upstream lookup started by `process` is in flight (or at the deadline, on the clock). */
  settled(deadlineMs: number): Promise<void>;
  /** Stops asking again for held events (shutdown); what still waits stays in the pending queue. */
  close(): void;
}

/** One decision of a preview's hit (a hold included), for its live stream. */
export interface PreviewDecision {
  mark: PreviewMark;
  destination: RuntimeDestination;
  event: Event;
  /** The decision's outcome and reason after the hand-off (a render, the preview or a full queue may have changed it). */
  outcome: string;
  reason: string;
  decision: Decision | undefined;
  consent: ConsentState | undefined;
  /** The event as rendered for the vendor (test mode applied when it was sent in preview). */
  rendered?: Extract<RenderedEvent, { ok: true }> | undefined;
  sent: boolean;
}

export interface PreviewSink {
  decided(d: PreviewDecision): void;
}
