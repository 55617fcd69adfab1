import type { IncomingMessage } from 'node:http';
import { clientIp } from '../http/client-ip.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import type { HitSink } from './hit-sink.ts';

/** What every client's hit routes (segment-routes.ts, ga4-routes.ts, meta-pixel-routes.ts) take from the app. */
export interface HitRouteOptions extends HitSink {
  metrics: Metrics;
  /** Proxies in front whose `X-Forwarded-For` entry is trusted (server.trustProxyHops). */
  trustProxyHops: number;
  /** The reception time of hits; default the system clock. */
  clock?: Clock;
  /** Where refusals are logged (warn, rate-limited); absent: not logged. */
  refusals?: RateLimitedLog;
}

/** What the parsers read from the request itself: the client's address and agent, and the reception time. */
export interface HitFacts {
  ip: string | undefined;
  userAgent: string | undefined;
  now: Date;
}

export function hitFacts(opts: Pick<HitRouteOptions, 'clock' | 'trustProxyHops'>): (req: IncomingMessage) => HitFacts {
  const clock = opts.clock ?? systemClock;
  return (req) => ({ ip: clientIp(req, opts.trustProxyHops), userAgent: req.headers['user-agent'], now: new Date(clock.now()) });
}
