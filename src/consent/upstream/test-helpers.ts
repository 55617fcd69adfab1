/**
 * Test doubles for the upstream verify client: a MockAgent-backed upstream and base options (the
 * clock is src/lib/fake-clock.ts). No test reaches the internet.
 */
import { MockAgent } from 'undici';
import type { VerifyClientOptions } from './verify-client.ts';


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
