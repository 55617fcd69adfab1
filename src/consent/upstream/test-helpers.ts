/**
 * Test doubles for the upstream verify client: a hand-driven clock (time moves only when a test
 * says so; timers fire in due order on `advance`) and a MockAgent-backed upstream. No test
 * reaches the internet.
 */
import { MockAgent } from 'undici';
import type { Clock, TimerHandle } from '../../delivery/clock.ts';
import type { VerifyClientOptions } from './verify-client.ts';

export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= target && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = target;
  }
}

export const UPSTREAM_ORIGIN = 'https://verify.test';

export function mockUpstream(): MockAgent {
  const agent = new MockAgent();
  agent.disableNetConnect();
  return agent;
}

/** Base options for tests: generous limits so each test only meets the mechanism it is about. */
export function baseOptions(overrides: Partial<VerifyClientOptions> & Pick<VerifyClientOptions, 'dispatcher'>): VerifyClientOptions {
  return {
    baseUrl: UPSTREAM_ORIGIN,
    siteId: 'site-1',
    apiKey: 'key-123',
    categoryMap: { marketing: 'advertising', analytics: 'analytics', functional: 'functional', necessary: 'necessary' },
    requestsPerMinute: 1_000,
    cacheTtlMs: 300_000,
    negativeCacheTtlMs: 30_000,
    maxCacheEntries: 1_000,
    timeoutMs: 1_000,
    backoff: { baseMs: 100, maxMs: 10_000 },
    breaker: { windowMs: 60_000, minRequests: 10, errorRatio: 0.5, openMs: 30_000 },
    failureTtlMs: 0,
    random: () => 0.5,
    ...overrides,
  };
}

export const CONSENT_BODY = {
  hasConsent: true,
  categories: { necessary: true, analytics: true, marketing: false, functional: true },
  consentedAt: '2026-03-08T12:00:00Z',
  geoCountry: 'DE',
};

export const NO_CONSENT_BODY = { hasConsent: false, categories: null, consentedAt: null, geoCountry: null };

/** Lets pending promise callbacks and MockAgent's immediate replies run. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
