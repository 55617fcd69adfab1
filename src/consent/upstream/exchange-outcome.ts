import type { Exchange } from './transport.ts';

/**
 * The label of one request to the verify API, for tagwarden_upstream_verify_calls_total: a small,
 * fixed set (the status is bucketed, 429 on its own), so an upstream cannot grow the series.
 * A 429 is the upstream saying our plan's rate was exceeded; the lookups counter's
 * `upstream_rate_limited` also counts lookups refused locally while its Retry-After runs.
 */
export function exchangeOutcome(x: Exchange): string {
  if (x.kind !== 'status') return x.kind;
  if (x.status === 429) return 'http_429';
  if (x.status >= 500 && x.status <= 599) return 'http_5xx';
  if (x.status >= 400 && x.status <= 499) return 'http_4xx';
  return 'http_other';
}
