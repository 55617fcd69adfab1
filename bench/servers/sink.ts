/**
 * The fake vendor: answers every request 200 `{}` as soon as the body is read (or `--delay-ms`
 * later, standing in for a vendor's answer time over the internet), except a random
 * `--fail-share` of them (default 0; bench/soak.ts uses 0.01), answered 500, or 503 with
 * `Retry-After: 1`, half each, so Tagwarden retries them. It counts, per path (/meta,
 * /ga4, /webhook), the requests, the events in them (the first top-level array of the JSON body:
 * Meta's `data`, GA4's `events`, the webhook's `batch`), the bytes and the peak of concurrent
 * requests. GET /__stats returns the counts; POST /__reset zeroes them.
 *
 *   node bench/servers/sink.ts [--delay-ms 0] [--fail-share 0]
 */
import { createServer } from 'node:http';
import { arg, exitOnSigterm, reportReady, tieToParent } from './common.ts';

export interface SinkPathStats {
  requests: number;
  events: number;
  bytes: number;
  largestBatch: number;
  /** Bodies that were not JSON or had no array. */
  unparsed: number;
  /** Most requests of this path open at once (read, or waiting for the delayed answer). */
  maxInFlight: number;
  /** Requests answered 500 or 503 (`--fail-share`), and the events in them (counted in `events` too: the vendor did not take them). */
  failed: number;
  failedEvents: number;
}

tieToParent();

const delayMs = Number(arg('delay-ms', '0'));
if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new Error('--delay-ms must be a number >= 0');
const failShare = Number(arg('fail-share', '0'));
if (!(Number.isFinite(failShare) && failShare >= 0 && failShare <= 1)) throw new Error('--fail-share must be a number in [0, 1]');
const inFlight = new Map<string, number>();

let stats: Record<string, SinkPathStats> = {};

function countEvents(body: string): number | undefined {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (Array.isArray(parsed)) return parsed.length;
    if (parsed !== null && typeof parsed === 'object') {
      for (const value of Object.values(parsed)) if (Array.isArray(value)) return value.length;
    }
  } catch {
    // counted as unparsed
  }
  return undefined;
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  if (path === '/__stats') {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (path === '/__reset') {
    req.resume();
    stats = {};
    res.statusCode = 204;
    res.end();
    return;
  }
  const open = (inFlight.get(path) ?? 0) + 1;
  inFlight.set(path, open);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const s = (stats[path] ??= { requests: 0, events: 0, bytes: 0, largestBatch: 0, unparsed: 0, maxInFlight: 0, failed: 0, failedEvents: 0 });
    if (open > s.maxInFlight) s.maxInFlight = open;
    s.requests += 1;
    s.bytes += body.length;
    const n = countEvents(body.toString('utf8'));
    if (n === undefined) s.unparsed += 1;
    else {
      s.events += n;
      if (n > s.largestBatch) s.largestBatch = n;
    }
    const fail = failShare > 0 && Math.random() < failShare;
    if (fail) {
      s.failed += 1;
      s.failedEvents += n ?? 0;
    }
    const answer = (): void => {
      inFlight.set(path, (inFlight.get(path) ?? 1) - 1);
      res.setHeader('content-type', 'application/json');
      if (!fail) {
        res.statusCode = 200;
        res.end('{}');
      } else if (Math.random() < 0.5) {
        res.statusCode = 500;
        res.end('{"error":"internal"}');
      } else {
        res.statusCode = 503;
        res.setHeader('retry-after', '1');
        res.end('{"error":"unavailable"}');
      }
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});

server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
