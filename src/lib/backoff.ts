/**
 * Exponential backoff with "full jitter", for every retry Tagwarden makes: vendor deliveries
 * (src/delivery/retry-policy.ts, per attempt), webhooks, and the upstream verify API (one "not
 * before" for the whole upstream after consecutive failures). Pure: the caller passes the count of
 * consecutive failures (1-based) and the random source.
 *
 * A uniform pick in [0, min(maxMs, baseMs * 2^(failures-1))): spreading the next attempt over the
 * whole window keeps instances and senders from retrying in step against a server that just
 * recovered. https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/** Ceiling of the jitter window after `failures` consecutive failures (1-based). */
export function backoffCeilingMs(failures: number, options: BackoffOptions): number {
  if (!(failures >= 1)) return 0;
  // 2 ** 1100 is Infinity, which Math.min turns back into maxMs: no overflow to worry about.
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** (failures - 1));
  return Number.isFinite(ceiling) && ceiling > 0 ? ceiling : 0;
}

export function fullJitterBackoffMs(failures: number, options: BackoffOptions, random: () => number): number {
  const r = random();
  // A misbehaving random source must not produce a negative or oversized delay.
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(unit * backoffCeilingMs(failures, options));
}
