/**
 * What the verify client remembers per visitor: the upstream's answers, and briefly its own call
 * failures. Both are LRU-bounded (`maxEntries` each); expiry is checked on read against the time
 * the caller passes (the client's injected clock), so the LRU only bounds the size.
 *
 * - An answer with consent data lives `ttlMs` from when it arrived; "no consent found" only
 *   `negativeTtlMs` (shorter: the visitor may answer the banner any moment). A TTL of 0 caches
 *   nothing of that kind.
 * - A visitor's own call failure (timeout, network, http_error, malformed) is replayed for
 *   `failureTtlMs` so one visitor's burst of events cannot turn into a burst of calls. Gate
 *   refusals and `closed` are never memoised: they are not about the visitor. 0 disables.
 */
import { LRUCache } from 'lru-cache';
import type { VerifyAnswer } from './verify-response.ts';
import { fail, type VerifyFailure } from './verify-result.ts';

export interface VerifyCacheOptions {
  maxEntries: number;
  ttlMs: number;
  negativeTtlMs: number;
  failureTtlMs: number;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/** Reasons that say something about the visitor's own call, and so are worth replaying. */
const MEMOISED: ReadonlySet<VerifyFailure['failed']> = new Set(['timeout', 'network', 'http_error', 'malformed']);

export class VerifyCache {
  readonly #o: VerifyCacheOptions;
  readonly #answers: LRUCache<string, Entry<VerifyAnswer>>;
  readonly #failures: LRUCache<string, Entry<VerifyFailure>>;

  constructor(options: VerifyCacheOptions) {
    this.#o = { ...options };
    this.#answers = new LRUCache({ max: options.maxEntries });
    this.#failures = new LRUCache({ max: options.maxEntries });
  }

  /** The answer still fresh at `now`; undefined is a miss, never consent. */
  answer(visitorId: string, now: number): VerifyAnswer | undefined {
    return live(this.#answers, visitorId, now)?.value;
  }

  /** Keeps an answer from its arrival (`fetchedAt`) for the TTL of its kind. */
  storeAnswer(visitorId: string, answer: VerifyAnswer): void {
    const ttl = answer.found ? this.#o.ttlMs : this.#o.negativeTtlMs;
    if (ttl > 0) this.#answers.set(visitorId, { value: answer, expiresAt: answer.fetchedAt + ttl });
  }

  /**
   * The visitor's memoised failure at `now`. Replayed, a failure that set a wait says when THIS
   * visitor may get further: not before the memo ends (its own retryAt may have passed already).
   * One that set none (4xx) still sets none.
   */
  failure(visitorId: string, now: number): VerifyFailure | undefined {
    const entry = live(this.#failures, visitorId, now);
    if (entry === undefined) return undefined;
    const { value, expiresAt } = entry;
    return value.retryAt === undefined || value.retryAt >= expiresAt ? value : fail(value.failed, expiresAt);
  }

  /** Memoises the visitor's own call failure from `now` (other reasons are ignored). */
  storeFailure(visitorId: string, failure: VerifyFailure, now: number): void {
    if (this.#o.failureTtlMs > 0 && MEMOISED.has(failure.failed)) this.#failures.set(visitorId, { value: failure, expiresAt: now + this.#o.failureTtlMs });
  }

  /** A local consent change: forget the answer and the failure. */
  forget(visitorId: string): void {
    this.#answers.delete(visitorId);
    this.#failures.delete(visitorId);
  }
}

function live<T>(cache: LRUCache<string, Entry<T>>, key: string, now: number): Entry<T> | undefined {
  const entry = cache.get(key);
  if (entry === undefined) return undefined;
  if (now >= entry.expiresAt) {
    cache.delete(key);
    return undefined;
  }
  return entry;
}
