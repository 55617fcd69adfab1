/**
 * The verify client's options and their checks: every bad value is a ConfigError at startup,
 * never a surprise at the first lookup.
 */
import type { Dispatcher } from 'undici';
import { ConfigError } from '../../errors.ts';
import type { BackoffOptions } from '../../lib/backoff.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { UpstreamAdmission } from './admission.ts';
import type { RequestBudget } from './rate-budget.ts';
import type { BreakerOptions } from './circuit-breaker.ts';
import { DEFAULT_URL_TEMPLATE, verifyUrlFor } from './verify-url.ts';
import type { Exchange } from './transport.ts';

export const DEFAULT_API_KEY_HEADER = 'X-API-Key';
/** The documented body is ~150 bytes; 16 KiB leaves room for extra fields and bounds memory. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;
/** Longest visitor id sent upstream (identity caps ids at 128 by default). */
export const MAX_VISITOR_ID_LENGTH = 512;

export interface VerifyClientOptions {
  /** Placeholders: `{base}` (raw), `{siteId}` and `{visitorId}` (URL-encoded). Default DEFAULT_URL_TEMPLATE. */
  urlTemplate?: string;
  /** Substituted for `{base}`, trailing slashes removed; required when the template has `{base}`. */
  baseUrl?: string;
  siteId: string;
  apiKey: string;
  /** Default `X-API-Key` (the seed's "Authentication"). */
  apiKeyHeader?: string;
  /** Upstream category name → site category, e.g. `{ marketing: 'advertising', analytics: 'analytics' }`. */
  categoryMap: Readonly<Record<string, string>>;
  /** The plan's rate (100 / 500 / 1,000); never exceeded in any sliding 60 s window. */
  requestsPerMinute: number;
  /** Where calls are taken from: default this instance's own window; the fleet's is ./fleet-budget.ts. */
  budget?: RequestBudget;
  /** TTL of an answer with consent data. */
  cacheTtlMs: number;
  /** TTL of "no consent found" (shorter: the visitor may answer the banner any moment). */
  negativeCacheTtlMs: number;
  /** LRU bound on cached answers (and, separately, on memoised failures). */
  maxCacheEntries: number;
  /** Whole exchange: connect, headers and body. Counted from when the request gets a slot. */
  timeoutMs: number;
  /**
   * Most requests on the wire at once (default 32); size the dispatcher's connections to match
   * (src/app.ts gives its 'upstream-verify' pool as many). Lookups beyond it wait for a slot
   * without a timer running.
   */
  maxConcurrent?: number;
  /** Most lookups waiting for a slot (default 10,000); beyond it a lookup fails at once (`overloaded`). */
  maxWaiting?: number;
  maxBodyBytes?: number;
  backoff: BackoffOptions;
  breaker: BreakerOptions;
  /**
   * How long a visitor's own call failure (timeout, network, http_error, malformed) is replayed
   * without a new call. Default 1000 ms; 0 disables. Never an answer, never consent.
   */
  failureTtlMs?: number;
  /** Wait after a 429 without a usable Retry-After. Default 60 000 ms: the plan's rate window. */
  rateLimitFallbackMs?: number;
  /** Owned by the caller: `close()` does not close it. */
  dispatcher: Dispatcher;
  /** Time and timers (the request timeout). Default: the system clock. */
  clock?: Clock;
  /** Uniform in [0, 1), for the backoff jitter. Default Math.random. */
  random?: () => number;
  /** Told how each request to the upstream ended (the app counts them: tagwarden_upstream_verify_calls_total). */
  onExchange?: (x: Exchange) => void;
}

/** The checked options, ready to build the client's parts from. */
export interface VerifySettings {
  url: (visitorId: string) => string;
  apiKeyHeader: string;
  apiKey: string;
  categoryMap: Readonly<Record<string, string>>;
  cacheTtlMs: number;
  negativeCacheTtlMs: number;
  failureTtlMs: number;
  maxCacheEntries: number;
  timeoutMs: number;
  maxBodyBytes: number;
  maxConcurrent: number;
  maxWaiting: number;
  admission: UpstreamAdmission;
  dispatcher: Dispatcher;
  clock: Clock;
}

/** An HTTP field name (RFC 9110 §5.1, token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function nonNegative(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`upstream verify: ${name} must be a finite number >= 0`);
  return v;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(`upstream verify: ${name} must be an integer >= 1`);
  return v;
}

export function resolveVerifyOptions(o: VerifyClientOptions): VerifySettings {
  const url = verifyUrlFor(o.urlTemplate ?? DEFAULT_URL_TEMPLATE, o.baseUrl, o.siteId);
  const apiKeyHeader = o.apiKeyHeader ?? DEFAULT_API_KEY_HEADER;
  if (!TOKEN.test(apiKeyHeader)) throw new ConfigError('upstream verify: apiKeyHeader is not a valid header name');
  if (typeof o.apiKey !== 'string' || o.apiKey === '') throw new ConfigError('upstream verify: apiKey is required');
  for (const [k, v] of Object.entries(o.categoryMap)) {
    if (typeof v !== 'string' || v === '') throw new ConfigError(`upstream verify: categoryMap.${k} must name a site category`);
  }
  const timeoutMs = nonNegative('timeoutMs', o.timeoutMs);
  if (timeoutMs === 0) throw new ConfigError('upstream verify: timeoutMs must be > 0');
  const maxConcurrent = o.maxConcurrent ?? 32;
  const maxWaiting = o.maxWaiting ?? 10_000;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new ConfigError('upstream verify: maxConcurrent must be an integer >= 1');
  if (!Number.isInteger(maxWaiting) || maxWaiting < 0) throw new ConfigError('upstream verify: maxWaiting must be an integer >= 0');
  const settings = {
    url,
    apiKeyHeader,
    apiKey: o.apiKey,
    categoryMap: { ...o.categoryMap },
    cacheTtlMs: nonNegative('cacheTtlMs', o.cacheTtlMs),
    negativeCacheTtlMs: nonNegative('negativeCacheTtlMs', o.negativeCacheTtlMs),
    failureTtlMs: nonNegative('failureTtlMs', o.failureTtlMs ?? 1_000),
    maxCacheEntries: positiveInt('maxCacheEntries', o.maxCacheEntries),
    timeoutMs,
    maxBodyBytes: positiveInt('maxBodyBytes', o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    maxConcurrent,
    maxWaiting,
    dispatcher: o.dispatcher,
    clock: o.clock ?? systemClock,
  };
  const rateLimitFallbackMs = nonNegative('rateLimitFallbackMs', o.rateLimitFallbackMs ?? 60_000);
  const backoff: BackoffOptions = { baseMs: nonNegative('backoff.baseMs', o.backoff.baseMs), maxMs: nonNegative('backoff.maxMs', o.backoff.maxMs) };
  const requestsPerMinute = positiveInt('requestsPerMinute', o.requestsPerMinute);
  let admission: UpstreamAdmission;
  try {
    admission = new UpstreamAdmission({ requestsPerMinute, breaker: o.breaker, backoff, rateLimitFallbackMs, random: o.random ?? Math.random, ...(o.budget === undefined ? {} : { budget: o.budget }) });
  } catch (err) {
    throw new ConfigError(`upstream verify: ${(err as Error).message}`);
  }
  return { ...settings, admission };
}
