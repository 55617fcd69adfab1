/**
 * The verify client's concurrency limit: at most `maxConcurrent` requests on the wire, FIFO after
 * that, and at most `maxWaiting` lookups waiting. A waiting lookup has no timer running: a timeout
 * must mean the upstream was slow, not that our own queue was long (which would back off and
 * starve every visitor).
 */
export class RequestSlots {
  readonly #max: number;
  readonly #maxWaiting: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(maxConcurrent: number, maxWaiting: number) {
    this.#max = maxConcurrent;
    this.#maxWaiting = maxWaiting;
  }

  /** A slot now (true), later (a promise of true), or never (false: too many already wait). */
  acquire(): Promise<boolean> | boolean {
    if (this.#active < this.#max) {
      this.#active++;
      return true;
    }
    if (this.#waiting.length >= this.#maxWaiting) return false;
    return new Promise<boolean>((resolve) => this.#waiting.push(() => resolve(true)));
  }

  release(): void {
    const next = this.#waiting.shift();
    // The slot passes straight to the next waiter: `active` stays as it is.
    if (next !== undefined) next();
    else this.#active--;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiting.length;
  }
}
