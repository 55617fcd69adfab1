/**
 * The fake vendor: answers every request 200 `{}` as soon as the body is read (or `--delay-ms`
 * later, standing in for a vendor's answer time over the internet), and counts, per path (/meta,
 * /ga4, /webhook), the requests, the events in them (the first top-level array of the JSON body:
 * Meta's `data`, GA4's `events`, the webhook's `batch`), the bytes and the peak of concurrent
 * requests. GET /__stats returns the counts; POST /__reset zeroes them.
 *
 *   node bench/servers/sink.ts [--delay-ms 0]
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
}

tieToParent();

const delayMs = Number(arg('delay-ms', '0'));
if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new Error('--delay-ms must be a number >= 0');
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
    const s = (stats[path] ??= { requests: 0, events: 0, bytes: 0, largestBatch: 0, unparsed: 0, maxInFlight: 0 });
    if (open > s.maxInFlight) s.maxInFlight = open;
    s.requests += 1;
    s.bytes += body.length;
    const n = countEvents(body.toString('utf8'));
    if (n === undefined) s.unparsed += 1;
    else {
      s.events += n;
      if (n > s.largestBatch) s.largestBatch = n;
    }
    const answer = (): void => {
      inFlight.set(path, (inFlight.get(path) ?? 1) - 1);
      res.statusCode = 200;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});

server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
