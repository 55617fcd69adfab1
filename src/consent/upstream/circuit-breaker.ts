/**
 * Circuit breaker for the upstream verify API. It does not open on one failure: outcomes are
 * counted over a rolling window, and the circuit opens only when the window holds at least
 * `minRequests` outcomes AND the share of failures reaches `errorRatio` (the volume threshold +
 * error percentage scheme of Hystrix-style breakers). Open: every call fails fast. After
 * `openMs`: half-open, and exactly ONE probe goes through; its success closes the circuit (with
 * an empty window), its failure re-opens it for another `openMs`.
 *
 * Outcomes of calls admitted under an earlier regime (admitted while closed, ending after the
 * circuit opened) are ignored: they say nothing about the upstream since the decision to open,
 * and letting a straggler's success close a circuit the probe is still testing would defeat the
 * single probe. Pure: the caller passes `now`.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Length of the rolling window outcomes are counted over. */
  windowMs: number;
  /** Fewest outcomes in the window before the ratio may open the circuit. */
  minRequests: number;
  /** Failure share in (0, 1] that opens the circuit. */
  errorRatio: number;
  /** How long the circuit stays open before a probe is let through. */
  openMs: number;
}

/** How a call ended, as the breaker sees it. `neutral`: says nothing about the upstream's health (a 429, a shutdown). */
export type BreakerOutcome = 'success' | 'failure' | 'neutral';

export type BreakerCheck = { ok: true; probe: boolean } | { ok: false; retryAt?: number };

export interface BreakerPermit {
  readonly probe: boolean;
  /** The regime (bumped on every opening) the call was admitted under. */
  readonly generation: number;
}

export class CircuitBreaker {
  readonly #o: BreakerOptions;
  #state: BreakerState = 'closed';
  #openedAt = 0;
  #probing = false;
  #generation = 0;
  /** Outcomes in the rolling window, oldest first, from index `#start`. */
  #log: { at: number; failed: boolean }[] = [];
  #start = 0;
  #failures = 0;

  constructor(options: BreakerOptions) {
    const { windowMs, minRequests, errorRatio, openMs } = options;
    if (!(Number.isFinite(windowMs) && windowMs > 0)) throw new RangeError('breaker.windowMs must be > 0');
    if (!(Number.isSafeInteger(minRequests) && minRequests >= 1)) throw new RangeError('breaker.minRequests must be an integer >= 1');
    if (!(errorRatio > 0 && errorRatio <= 1)) throw new RangeError('breaker.errorRatio must be in (0, 1]');
    if (!(Number.isFinite(openMs) && openMs >= 0)) throw new RangeError('breaker.openMs must be >= 0');
    this.#o = { windowMs, minRequests, errorRatio, openMs };
  }

  /** The state at `now` (an open circuit whose cool-down has passed reads as half-open). */
  state(now: number): BreakerState {
    if (this.#state === 'open' && now - this.#openedAt >= this.#o.openMs) {
      this.#state = 'half-open';
      this.#probing = false;
    }
    return this.#state;
  }

  check(now: number): BreakerCheck {
    switch (this.state(now)) {
      case 'closed':
        return { ok: true, probe: false };
      case 'open':
        return { ok: false, retryAt: this.#openedAt + this.#o.openMs };
      case 'half-open':
        return this.#probing ? { ok: false } : { ok: true, probe: true };
    }
  }

  /** Call right after a successful `check`, with its `probe`, when the call really goes out. */
  acquire(probe: boolean): BreakerPermit {
    if (probe) this.#probing = true;
    return { probe, generation: this.#generation };
  }

  record(permit: BreakerPermit, outcome: BreakerOutcome, now: number): void {
    if (permit.generation !== this.#generation) return;
    if (permit.probe) {
      if (this.#state !== 'half-open') return;
      this.#probing = false;
      if (outcome === 'success') this.#close();
      else if (outcome === 'failure') this.#open(now);
      // neutral: stay half-open; the next call is the probe.
      return;
    }
    if (this.#state !== 'closed' || outcome === 'neutral') return;
    this.#prune(now);
    const failed = outcome === 'failure';
    this.#log.push({ at: now, failed });
    if (failed) this.#failures++;
    const total = this.#log.length - this.#start;
    if (failed && total >= this.#o.minRequests && this.#failures / total >= this.#o.errorRatio) this.#open(now);
  }

  /** Outcomes and failures in the window ending at `now` (for tests and metrics). */
  window(now: number): { total: number; failures: number } {
    this.#prune(now);
    return { total: this.#log.length - this.#start, failures: this.#failures };
  }

  #prune(now: number): void {
    const cutoff = now - this.#o.windowMs;
    while (this.#start < this.#log.length && this.#log[this.#start]!.at <= cutoff) {
      if (this.#log[this.#start]!.failed) this.#failures--;
      this.#start++;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.#start > 1024 && this.#start * 2 > this.#log.length) {
      this.#log = this.#log.slice(this.#start);
      this.#start = 0;
    }
  }

  #open(now: number): void {
    this.#state = 'open';
    this.#openedAt = now;
    this.#probing = false;
    this.#generation++;
    this.#resetWindow();
  }

  #close(): void {
    this.#state = 'closed';
    this.#probing = false;
    this.#generation++;
    this.#resetWindow();
  }

  #resetWindow(): void {
    this.#log = [];
    this.#start = 0;
    this.#failures = 0;
  }
}
