/**
 * The upstream's "not before" gate: after a 429 or 503 carrying `Retry-After`, or after a
 * failure that earns a backoff, no call at all goes to the upstream before the time has passed;
 * then exactly ONE probe goes out, and the gate opens for everyone only when that probe gets an
 * answer that sets no new wait. Lookups meanwhile fail fast with the gate's reason.
 *
 * Why one probe rather than letting every waiting lookup through at expiry: the upstream limits
 * per API key (seed cookieboss-consent-verification-api.txt, "Rate limits"), so a burst at the
 * first permitted instant would earn another 429 at once; one request tells us whether it is
 * ready. Pure: the caller passes `now`.
 */

export type GateReason = 'rate_limited' | 'backing_off';

export type GateCheck =
  | { ok: true; probe: boolean }
  /** `retryAt` is absent while the probe is out: nobody knows yet. */
  | { ok: false; reason: GateReason; retryAt?: number };

/** Handed out by `acquire`, handed back to `complete`. */
export interface GateTicket {
  readonly probe: boolean;
  /** The deferral generation the ticket was issued under. */
  readonly generation: number;
}

export class UpstreamGate {
  #notBefore: number | undefined;
  #reason: GateReason = 'backing_off';
  #probing = false;
  /** Bumped by every deferral, so a probe only opens the gate if nothing deferred since it left. */
  #generation = 0;

  /** The time before which no call goes out; undefined when the gate is open. */
  get notBefore(): number | undefined {
    return this.#notBefore;
  }

  get reason(): GateReason | undefined {
    return this.#notBefore === undefined ? undefined : this.#reason;
  }

  check(now: number): GateCheck {
    if (this.#notBefore === undefined) return { ok: true, probe: false };
    if (now < this.#notBefore) return { ok: false, reason: this.#reason, retryAt: this.#notBefore };
    if (this.#probing) return { ok: false, reason: this.#reason };
    return { ok: true, probe: true };
  }

  /** Call right after a successful `check`, with its `probe`, when the call really goes out. */
  acquire(probe: boolean): GateTicket {
    if (probe) this.#probing = true;
    return { probe, generation: this.#generation };
  }

  /**
   * Reports how a call ended. `defer` sets (or extends: the later time wins) the wait; without
   * it, a probe's answer opens the gate unless another call deferred after the probe left.
   * `aborted` (shutdown) releases the probe without judging the upstream.
   */
  complete(ticket: GateTicket, outcome: { defer?: { until: number; reason: GateReason }; aborted?: boolean } = {}): void {
    if (ticket.probe) this.#probing = false;
    const { defer } = outcome;
    if (defer !== undefined) {
      this.#generation++;
      if (this.#notBefore === undefined || defer.until >= this.#notBefore) {
        this.#notBefore = defer.until;
        this.#reason = defer.reason;
      }
      return;
    }
    if (outcome.aborted === true) return;
    if (ticket.probe && ticket.generation === this.#generation) this.#notBefore = undefined;
  }
}
