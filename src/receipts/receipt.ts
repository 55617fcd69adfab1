import type { CategorySignal } from '../consent/merge.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { ConsentState } from '../consent/state.ts';
import type { Event } from '../ingest/event.ts';
import type { Decision } from '../policy/decide.ts';
import type { ModeChoice } from '../policy/jurisdiction.ts';
import { reasonText } from '../policy/reasons.ts';

/**
 * A decision receipt (docs/receipts.md): what one destination's decision about one event saw and
 * why it came out as it did. Ids only: the visitor and user ids the store keys subjects by, the
 * messageId and the destination id; no event properties, no IP, no TCF string (its validity only).
 */
export interface Receipt {
  decidedAt: number;
  messageId: string;
  destinationId: string;
  visitorId?: string;
  userId?: string;
  /**
   * `held`: the event began to wait (not final; outcome `hold`); the final decision, one per
   * event × destination: `decided` (the hit's own), `held_decided` (a held event decided by the
   * answer it waited for), `unresolved` (a hold refused, expired, given up, or dropped at shutdown).
   */
  phase: 'held' | 'decided' | 'held_decided' | 'unresolved';
  /** `forward`, `redact`, `hold`, `drop`. */
  outcome: string;
  /** The settling rule's text (`consent_denied:analytics`, `queue_full`…): the decision metric's reason. */
  reason: string;
  /** Every rule the policy applied, as text, in order. */
  rules: string[];
  /** The data control mode and how it was chosen (src/policy/jurisdiction.ts), without the raw header value. */
  mode?: Pick<ModeChoice, 'mode' | 'rule' | 'region' | 'matched'>;
  /** Per site category: status, the signal that decided it, and that signal's time. */
  consent?: Record<string, { status: string; source: string; at?: number }>;
  signals?: {
    gpc: boolean;
    /** Segment `categoryPreferences` present on the event. */
    preferences: boolean;
    gcs?: string;
    gcd?: string;
    consentMode?: ConsentState['consentMode'];
    tcf?: { applies: boolean; source?: string; valid?: boolean };
    /** Signals dated after the arrival, bounded to it. */
    bounded?: ConsentState['bounded'];
  };
  /**
   * The answer from elsewhere that joined the hit's signals (consent store or upstream): source,
   * time, and for the store the profile version it was read at (GET /api/v1/consent shows it, and
   * the audit rows up to that change are what it rests on).
   */
  joined?: { source: string; at?: number; version?: number };
  /**
   * What became of the delivery of a forwarded (or redacted) event, from the delivery's result;
   * absent: pending (queued, or in flight). See ./delivery.ts.
   */
  delivery?: ReceiptDelivery;
}

/** A delivery result as a receipt shows it (./delivery.ts deliveryOf). */
export interface ReceiptDelivery {
  /** `delivered`; `retrying` (an attempt failed, another is scheduled); `dead` (given up: a dead letter); `dropped` (a revocation before it left); `parked` (shutdown: the outbox). */
  status: 'delivered' | 'retrying' | 'dead' | 'dropped' | 'parked';
  /** When the result arrived (ms since the epoch). */
  at: number;
  attempt: number;
  /** The vendor's HTTP status of the attempt, when one answered. */
  httpStatus?: number;
  /** The error's code (`TW_ERR_DELIVERY_REJECTED`…) of a failure or a retry. */
  code?: string;
  /** The delivery's stable reason (a retry policy reason, `revoked`, `shutdown`…). */
  reason?: string;
}

export interface ReceiptContext {
  consent: ConsentState;
  mode: ModeChoice;
  /** The store / upstream answer that joined the hit's own signals, if any. */
  joined?: CategorySignal | undefined;
  phase: Receipt['phase'];
}

/** Where the pipeline hands a settled decision (composed in app.ts; absent: no receipts). */
export interface ReceiptSink {
  record(receipt: Receipt): void;
}

function finite(at: number | undefined): number | undefined {
  return at !== undefined && Number.isFinite(at) ? at : undefined;
}

/** The receipt of one settled decision: `settled` is what the hand-off did (a render or queue drop overrides the policy's outcome). */
export function buildReceipt(
  event: Event,
  signals: RequestSignals | undefined,
  destinationId: string,
  settled: { outcome: string; reason: string },
  decision: Decision | undefined,
  ctx: ReceiptContext | undefined,
  now: number,
): Receipt {
  const r: Receipt = { decidedAt: now, messageId: event.messageId, destinationId, phase: ctx?.phase ?? 'unresolved', outcome: settled.outcome, reason: settled.reason, rules: decision === undefined ? [settled.reason] : decision.reasons.map(reasonText) };
  if (decision !== undefined && settled.reason !== decision.metricLabel) r.rules.push(settled.reason);
  const visitor = signals?.visitor?.id;
  if (visitor !== undefined) r.visitorId = visitor;
  if (event.userId !== undefined) r.userId = event.userId;
  if (ctx !== undefined) {
    const m = ctx.mode;
    r.mode = { mode: m.mode, rule: m.rule, ...(m.region === undefined ? {} : { region: m.region }), ...(m.matched === undefined ? {} : { matched: m.matched }) };
    const consent: NonNullable<Receipt['consent']> = {};
    for (const [c, v] of Object.entries(ctx.consent.categories)) {
      const at = finite(v.at);
      consent[c] = { status: v.status, source: v.source, ...(at === undefined ? {} : { at }) };
    }
    r.consent = consent;
    const s: NonNullable<Receipt['signals']> = { gpc: ctx.consent.gpc === true, preferences: ctx.consent.preferencesPresent };
    if (signals?.gcs !== undefined) s.gcs = signals.gcs;
    if (signals?.gcd !== undefined) s.gcd = signals.gcd;
    if (ctx.consent.consentMode !== undefined) s.consentMode = ctx.consent.consentMode;
    const tcf = ctx.consent.tcf;
    if (tcf !== undefined) s.tcf = { applies: tcf.applies, ...(tcf.source === undefined ? {} : { source: tcf.source }), ...(tcf.result === undefined ? {} : { valid: tcf.result.ok }) };
    if (ctx.consent.bounded !== undefined) s.bounded = ctx.consent.bounded;
    r.signals = s;
    const j = ctx.joined;
    // No time when nothing was stored (`store:none`): absent, not 0 (1970).
    if (j !== undefined) {
      const at = finite(j.at);
      r.joined = { source: j.source, ...(at === undefined || at <= 0 ? {} : { at }), ...(j.version === undefined ? {} : { version: j.version }) };
    }
  }
  return r;
}
