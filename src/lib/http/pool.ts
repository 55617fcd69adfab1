/**
 * Connection pools of the one outbound HTTP stack (./send.ts), one per purpose, each created once
 * where the app is composed (src/app.ts; the webhook worker makes its own, guarded one) so that
 * one kind of traffic never queues behind another: vendor deliveries, consent webhooks and the
 * upstream verify API each keep their own sockets. A pool is an undici Agent: keep-alive, a pool
 * of sockets per origin. Nothing here follows redirects (no redirect interceptor is ever
 * composed in): a 3xx reaches the caller as an answer.
 */
import type { LookupFunction } from 'node:net';
import { Agent } from 'undici';

export type PoolPurpose = 'vendors' | 'webhooks' | 'upstream-verify';

export interface PoolOptions {
  /** Most sockets per origin (opened as needed). Default per purpose (POOL_DEFAULTS). */
  connections?: number;
  /** How long an idle keep-alive socket is kept when the server does not say. Default 4000 ms. */
  keepAliveTimeoutMs?: number;
  /** Upper bound on a server-announced keep-alive. Default 60000 ms. */
  keepAliveMaxTimeoutMs?: number;
  /** TCP + TLS connect timeout. Default 10000 ms. */
  connectTimeoutMs?: number;
  /**
   * Resolves host names at connect time. The webhook pool passes the URL guard's checked lookup
   * (src/api/url-guard.ts), so the socket connects to the very address that was checked.
   */
  lookup?: LookupFunction;
}

type Sizing = Required<Omit<PoolOptions, 'lookup'>>;

const COMMON = { keepAliveTimeoutMs: 4_000, keepAliveMaxTimeoutMs: 60_000, connectTimeoutMs: 10_000 };

/**
 * Sockets per origin: vendors 128 (GA4's maxInFlight: one request per client, thousands a
 * second), webhooks 4 (a receiver is one customer's endpoint), the verify API 32 (the verify
 * client's default maxConcurrent; size it to the configured one).
 */
export const POOL_DEFAULTS: Readonly<Record<PoolPurpose, Sizing>> = {
  vendors: { connections: 128, ...COMMON },
  webhooks: { connections: 4, ...COMMON },
  'upstream-verify': { connections: 32, ...COMMON },
};

export function createPool(purpose: PoolPurpose, options: PoolOptions = {}): Agent {
  const d = POOL_DEFAULTS[purpose];
  const connect = { timeout: options.connectTimeoutMs ?? d.connectTimeoutMs };
  return new Agent({
    connections: options.connections ?? d.connections,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs,
    keepAliveMaxTimeout: options.keepAliveMaxTimeoutMs ?? d.keepAliveMaxTimeoutMs,
    connect: options.lookup === undefined ? connect : { ...connect, lookup: options.lookup },
  });
}
