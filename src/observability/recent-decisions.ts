import type { Clock } from '../lib/clock.ts';
import type { Metrics } from './metrics.ts';

/**
 * The latest decisions of this instance, for the dashboard's "recent decisions" (docs/ui.md): a
 * fixed ring, ids only (messageId, destination, visitor id, the event's type and name), never an
 * event's properties, traits or context. Recorded where the decisions are counted
 * (src/pipeline/outcomes.ts), so the list and `tagwarden_decisions_total` see the same decisions;
 * holds are listed when they begin.
 */
export interface DecisionEntry {
  at: number;
  messageId: string;
  destinationId: string;
  visitorId?: string;
  /** `forward`, `redact`, `drop`, `failed`, or `hold` (a hold begun; its final decision follows). */
  outcome: string;
  reason: string;
  eventType: string;
  eventName?: string;
}

/** What an entry takes from an event: ids and names only. */
export interface DecidedEvent {
  messageId: string;
  type: string;
  event?: string | undefined;
  name?: string | undefined;
}

export interface RecentDecisions {
  /** Starts keeping the latest `capacity` decisions, stamped on `clock`. Off until called: record() is then a single check. */
  keep(capacity: number, clock: Clock): void;
  record(destinationId: string, outcome: string, reason: string, event: DecidedEvent, visitorId?: string): void;
  /** The latest `limit` decisions, newest first. */
  latest(limit: number): DecisionEntry[];
}

export const DEFAULT_RECENT_DECISIONS = 200;
/** Event names are the sender's text: bounded like the ids they sit next to. */
const MAX_NAME_LENGTH = 128;

/** One per metrics instance, like src/pipeline/held-count.ts: the pipeline, the held queue's expiry and the dashboard share it. */
const perMetrics = new WeakMap<object, RecentDecisions>();

export function recentDecisions(metrics: Pick<Metrics, 'decisions'>): RecentDecisions {
  let recent = perMetrics.get(metrics.decisions);
  if (recent === undefined) perMetrics.set(metrics.decisions, (recent = createRecentDecisions()));
  return recent;
}

export function createRecentDecisions(): RecentDecisions {
  let ring: (DecisionEntry | undefined)[] = [];
  let next = 0;
  let clock: Clock | undefined;
  return {
    keep(capacity, c) {
      if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('recent decisions: capacity must be a positive integer');
      ring = new Array<DecisionEntry | undefined>(capacity);
      next = 0;
      clock = c;
    },
    record(destinationId, outcome, reason, event, visitorId) {
      if (clock === undefined) return;
      const entry: DecisionEntry = { at: clock.now(), messageId: event.messageId, destinationId, outcome, reason, eventType: event.type };
      if (visitorId !== undefined) entry.visitorId = visitorId;
      const name = event.event ?? event.name;
      if (name !== undefined) entry.eventName = name.length > MAX_NAME_LENGTH ? name.slice(0, MAX_NAME_LENGTH) : name;
      ring[next] = entry;
      next = (next + 1) % ring.length;
    },
    latest(limit) {
      const out: DecisionEntry[] = [];
      for (let i = 1; i <= ring.length && out.length < limit; i++) {
        const e = ring[(next - i + ring.length) % ring.length];
        if (e === undefined) break;
        out.push(e);
      }
      return out;
    },
  };
}
