/**
 * Held events wait out the upstream (issue 11). When a lookup for a visitor fails because the
 * upstream verify API refused or failed (a 429 with Retry-After, a 5xx, a timeout, a network
 * error, an open circuit, a backoff) or because our own budget has no room, the visitor's held
 * events (`whenUnknown: hold`) stay in the pending queue instead of being dropped, and the visitor
 * waits here. When the upstream may be asked again (the verify client's `readiness`: the
 * Retry-After has passed, the backoff has run, the circuit half-opens), ONE waiting visitor is
 * asked first; only when that probe gets an answer are the others asked, oldest first, as many
 * as the request budget has room for and at most `maxAsking` at once. A refusal at any point
 * goes back to one probe. The answer decides the events as any answer does; only the pending
 * queue's age and size bounds drop them.
 *
 * Never a call inside a Retry-After window: nothing here calls the upstream before `readyAt`,
 * and the verify client's own gate refuses any lookup that tries (src/consent/upstream/gate.ts).
 *
 * `nextStep` is the pure decision; `createHeldRetry` keeps the (plain, persistable) state and
 * one timer on the injected clock.
 */
import { MAX_TIMER_MS, type Clock, type TimerHandle } from '../lib/clock.ts';
import type { LookupOutcome } from './upstream/source.ts';
import type { UpstreamReadiness } from './upstream/verify-client.ts';

/** What a lookup's outcome means for the events waiting on it. */
export type OutcomeKind =
  /** The upstream answered (consent, denial or "no consent found"): decide the events. */
  | 'answer'
  /** The upstream refused or failed: the events wait, and the next re-ask is a single probe. */
  | 'refused'
  /** Our own limits (request budget, lookups waiting for a slot): the events wait, no probe needed. */
  | 'no_room'
  /** Waiting would not change it (a 4xx, a malformed body, shutdown, an internal error): decided now, as before. */
  | 'final';

const REFUSED = new Set(['upstream_rate_limited', 'upstream_backing_off', 'upstream_circuit_open', 'upstream_timeout', 'upstream_network']);
const NO_ROOM = new Set(['upstream_budget_exhausted', 'upstream_budget_unavailable', 'upstream_overloaded']);

export function classifyOutcome(outcome: LookupOutcome): OutcomeKind {
  if ('signal' in outcome) return 'answer';
  if (REFUSED.has(outcome.failure)) return 'refused';
  // A 5xx carries the backoff it set; a 4xx carries no wait: the upstream answered and would
  // answer the same again.
  if (outcome.failure === 'upstream_http_error' && outcome.retryAt !== undefined) return 'refused';
  if (NO_ROOM.has(outcome.failure)) return 'no_room';
  return 'final';
}

/** `probe`: the next re-ask is one visitor, alone. `flow`: a probe got an answer, the rest may follow. */
export type RetryMode = 'probe' | 'flow';

export interface StepInput {
  now: number;
  mode: RetryMode;
  /** Visitors waiting and not being re-asked. */
  waiting: number;
  /** Re-asks of ours still out. */
  asking: number;
  readiness: UpstreamReadiness;
  /** Wait when the upstream cannot say (a probe of someone else's is out). */
  pollMs: number;
  /** Most re-asks out at once. */
  maxAsking: number;
}

export type Step = { do: 'ask'; count: number; probe: boolean } | { do: 'wake'; at: number } | { do: 'idle' };

const IDLE: Step = { do: 'idle' };

export function nextStep(i: StepInput): Step {
  if (i.waiting === 0) return IDLE;
  // Our probe is out: its outcome decides what comes next.
  if (i.mode === 'probe' && i.asking > 0) return IDLE;
  const { readyAt, room } = i.readiness;
  if (readyAt === undefined) return { do: 'wake', at: i.now + i.pollMs };
  if (readyAt > i.now) return { do: 'wake', at: readyAt };
  if (room < 1) return { do: 'wake', at: i.now + i.pollMs };
  // After a refusal, or when the client's gate wants a probe, one visitor goes alone.
  if (i.mode === 'probe' || i.readiness.probe) return i.asking > 0 ? IDLE : { do: 'ask', count: 1, probe: true };
  const count = Math.min(i.waiting, room, i.maxAsking - i.asking);
  return count > 0 ? { do: 'ask', count, probe: false } : IDLE;
}

/** One waiting visitor, as plain data (a durable journal can store it as it is). */
export interface WaitingVisitor {
  visitorId: string;
  /** When its events first had to wait (ms since the epoch, on the injected clock). */
  since: number;
  /** Re-asks made for it so far. */
  asks: number;
  /**
   * Not asked again before this time: its own last failure said so (the verify client replays a
   * visitor's failed call for a while without calling, src/consent/upstream/verify-client.ts).
   */
  notBefore?: number;
}

export interface HeldRetryState {
  mode: RetryMode;
  /** Oldest first. */
  visitors: WaitingVisitor[];
}

export interface HeldRetryOptions {
  clock: Clock;
  readiness: () => UpstreamReadiness;
  /** Asks the upstream again for the visitor; its outcome comes back through `outcome`. */
  ask: (visitorId: string) => void;
  /** True while events are held for the visitor (expired or decided ones are not asked for). */
  holds: (visitorId: string) => boolean;
  /** How many items the pending queue holds: bounds the visitors remembered (see `prune`). */
  heldCount: () => number;
  /** Default 1000 ms. */
  pollMs?: number;
  /** Default 32. */
  maxAsking?: number;
  /** Each re-ask's outcome, by phase, with the lookup's result label. */
  onReask?: (phase: 'probe' | 'flow', result: string) => void;
}

export interface HeldRetry {
  /** A lookup failure kept this visitor's events waiting; `retryAt` is the failure's, when it has one. */
  wait(visitorId: string, retryAt?: number): void;
  /**
   * Every lookup's outcome, ours or a fresh hit's (`result` is its metric label): an answer lets
   * the others follow, a refusal goes back to one probe. Call it before deciding the events.
   */
  outcome(visitorId: string, kind: OutcomeKind, result: string): void;
  snapshot(): HeldRetryState;
  readonly size: number;
  /** Stops the timer (shutdown); nothing is asked afterwards. */
  close(): void;
}

export function createHeldRetry(o: HeldRetryOptions): HeldRetry {
  const pollMs = o.pollMs ?? 1000;
  const maxAsking = o.maxAsking ?? 32;
  // A Map keeps insertion order: the oldest waiting visitor is asked first.
  const visitors = new Map<string, WaitingVisitor>();
  /** Visitors re-asked by us whose outcome has not come back, with the phase they were asked in. */
  const asking = new Map<string, 'probe' | 'flow'>();
  let mode: RetryMode = 'probe';
  let timer: TimerHandle | undefined;
  let timerAt = 0;
  let closed = false;

  function disarm(): void {
    if (timer !== undefined) o.clock.clearTimeout(timer);
    timer = undefined;
  }

  function arm(at: number): void {
    // Every failed lookup in a window steps again; the wake-up time is usually the same.
    if (timer !== undefined && timerAt === at) return;
    disarm();
    timerAt = at;
    const handle = o.clock.setTimeout(
      () => {
        timer = undefined;
        step();
      },
      Math.min(MAX_TIMER_MS, Math.max(1, at - o.clock.now())),
    );
    // A waiting visitor must not keep the process alive on its own (shutdown drains them).
    if (typeof handle === 'object' && 'unref' in handle && typeof handle.unref === 'function') (handle as { unref(): void }).unref();
    timer = handle;
  }

  /**
   * Forgets visitors whose events are gone (expired, taken by a consent change). Each visitor
   * remembered held at least one item when it began waiting, so once there are more visitors than
   * twice the items held, at least half are stale: pruning then costs O(1) per `wait`, amortised.
   */
  function prune(): void {
    if (visitors.size <= Math.max(1024, 2 * o.heldCount())) return;
    for (const id of visitors.keys()) if (!asking.has(id) && !o.holds(id)) visitors.delete(id);
  }

  /** Up to `count` visitors to ask now, oldest first; `later` is the soonest a skipped one may be asked. */
  function pick(count: number, now: number): { ids: string[]; later: number | undefined } {
    const ids: string[] = [];
    let later: number | undefined;
    for (const [id, v] of visitors) {
      if (ids.length >= count) break;
      if (asking.has(id)) continue;
      if (!o.holds(id)) {
        visitors.delete(id);
        continue;
      }
      if (v.notBefore !== undefined && v.notBefore > now) {
        if (later === undefined || v.notBefore < later) later = v.notBefore;
        continue;
      }
      v.asks++;
      ids.push(id);
    }
    return { ids, later };
  }

  function step(): void {
    if (closed) return;
    // Bounded: each round either asks, or deletes stale visitors it met while picking.
    for (let round = 0; round < 3; round++) {
      const now = o.clock.now();
      const s = nextStep({ now, mode, waiting: visitors.size - asking.size, asking: asking.size, readiness: o.readiness(), pollMs, maxAsking });
      if (s.do === 'idle') return disarm();
      if (s.do === 'wake') return arm(s.at);
      const { ids, later } = pick(s.count, now);
      if (ids.length === 0) {
        // Everyone left must wait for their own time: wake then (the upstream may be ready sooner).
        if (later !== undefined) return arm(later);
        continue;
      }
      disarm();
      const phase = s.probe ? 'probe' : 'flow';
      for (const id of ids) asking.set(id, phase);
      for (const id of ids) o.ask(id);
      return;
    }
  }

  return {
    wait(visitorId, retryAt) {
      if (closed) return;
      const now = o.clock.now();
      let v = visitors.get(visitorId);
      if (v === undefined) {
        visitors.set(visitorId, (v = { visitorId, since: now, asks: 0 }));
        prune();
      }
      if (retryAt !== undefined && retryAt > now && (v.notBefore === undefined || retryAt > v.notBefore)) v.notBefore = retryAt;
      step();
    },
    outcome(visitorId, kind, result) {
      const phase = asking.get(visitorId);
      if (phase !== undefined) {
        asking.delete(visitorId);
        o.onReask?.(phase, result);
        // Our re-ask failed while the upstream looked ready: never ask the same visitor twice at
        // one instant (a failure that carries a later time pushes this further in `wait`).
        const v = visitors.get(visitorId);
        if (v !== undefined && (kind === 'refused' || kind === 'no_room')) v.notBefore = Math.max(v.notBefore ?? 0, o.clock.now() + pollMs);
      }
      if (kind === 'answer' || kind === 'final') visitors.delete(visitorId);
      if (kind === 'answer') mode = 'flow';
      else if (kind === 'refused') mode = 'probe';
      if (!closed && visitors.size > 0) step();
    },
    snapshot() {
      return { mode, visitors: [...visitors.values()].map((v) => ({ ...v })) };
    },
    get size() {
      return visitors.size;
    },
    close() {
      closed = true;
      disarm();
    },
  };
}
