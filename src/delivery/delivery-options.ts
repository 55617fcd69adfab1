/**
 * Delivery's settings: the retry policy and the per-destination limits, their defaults, and their
 * validation (a ConfigError listing every problem, at construction rather than at the first send).
 */
import { ConfigError } from '../errors.ts';
import { MAX_TIMER_MS } from '../lib/clock.ts';
import type { RetryPolicy } from './retry-policy.ts';

export interface DestinationDeliveryOptions {
  /** Budget for one HTTP exchange (connect, headers, body). */
  requestTimeoutMs: number;
  /** Most concurrent requests to this destination. */
  maxInFlight: number;
  /** Most events held for this destination (batching, in flight, awaiting retry). */
  maxQueuedEvents: number;
}

export const DEFAULT_DESTINATION_OPTIONS: DestinationDeliveryOptions = {
  requestTimeoutMs: 10_000,
  maxInFlight: 4,
  maxQueuedEvents: 10_000,
};

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  maxTotalMs: 10 * 60_000,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
};

export interface DeliverySettingsInput {
  retry?: Partial<RetryPolicy> | undefined;
  defaults?: Partial<DestinationDeliveryOptions> | undefined;
  destinations?: Record<string, Partial<DestinationDeliveryOptions>> | undefined;
}

export interface DeliverySettings {
  policy: RetryPolicy;
  /** A destination's settings: its override over the defaults, or the defaults. */
  forDestination(id: string): DestinationDeliveryOptions;
}

/** Merges the input over the defaults and validates it; throws ConfigError. */
export function resolveDeliverySettings(input: DeliverySettingsInput): DeliverySettings {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...input.retry };
  validatePolicy(policy);
  const defaults: DestinationDeliveryOptions = { ...DEFAULT_DESTINATION_OPTIONS, ...input.defaults };
  validateDestinationOptions('defaults', defaults);
  const perDestination = new Map<string, DestinationDeliveryOptions>();
  for (const [id, override] of Object.entries(input.destinations ?? {})) {
    const merged = { ...defaults, ...override };
    validateDestinationOptions(`destinations.${id}`, merged);
    perDestination.set(id, merged);
  }
  return { policy, forDestination: (id) => perDestination.get(id) ?? defaults };
}

function validatePolicy(policy: RetryPolicy): void {
  const problems: string[] = [];
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) problems.push('retry.maxAttempts must be an integer >= 1');
  // The deadline bounds every retry delay, and timers cannot wait longer than MAX_TIMER_MS.
  if (!(policy.maxTotalMs > 0 && policy.maxTotalMs <= MAX_TIMER_MS)) problems.push(`retry.maxTotalMs must be in (0, ${MAX_TIMER_MS}]`);
  if (!(policy.baseDelayMs >= 0 && Number.isFinite(policy.baseDelayMs))) problems.push('retry.baseDelayMs must be a finite number >= 0');
  if (!(policy.maxDelayMs >= 0 && Number.isFinite(policy.maxDelayMs))) problems.push('retry.maxDelayMs must be a finite number >= 0');
  if (problems.length > 0) throw new ConfigError(`invalid delivery retry policy: ${problems.join('; ')}`, { details: problems });
}

function validateDestinationOptions(path: string, o: DestinationDeliveryOptions): void {
  const problems: string[] = [];
  if (!(o.requestTimeoutMs > 0 && o.requestTimeoutMs <= MAX_TIMER_MS)) problems.push(`${path}.requestTimeoutMs must be in (0, ${MAX_TIMER_MS}]`);
  if (!Number.isInteger(o.maxInFlight) || o.maxInFlight < 1) problems.push(`${path}.maxInFlight must be an integer >= 1`);
  if (!Number.isInteger(o.maxQueuedEvents) || o.maxQueuedEvents < 1) problems.push(`${path}.maxQueuedEvents must be an integer >= 1`);
  if (problems.length > 0) throw new ConfigError(`invalid delivery options: ${problems.join('; ')}`, { details: problems });
}
