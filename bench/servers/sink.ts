/**
 * The fake vendor: answers every request 200 `{}` as soon as the body is read, and counts, per
 * path (/meta, /ga4, /webhook), the requests, the events in them (the first top-level array of
 * the JSON body: Meta's `data`, GA4's `events`, the webhook's `batch`) and the bytes.
 * GET /__stats returns the counts; POST /__reset zeroes them.
 */
import { createServer } from 'node:http';
import { exitOnSigterm, reportReady, tieToParent } from './common.ts';

export interface SinkPathStats {
  requests: number;
  events: number;
  bytes: number;
  largestBatch: number;
  /** Bodies that were not JSON or had no array. */
  unparsed: number;
}

tieToParent();

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
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const s = (stats[path] ??= { requests: 0, events: 0, bytes: 0, largestBatch: 0, unparsed: 0 });
    s.requests += 1;
    s.bytes += body.length;
    const n = countEvents(body.toString('utf8'));
    if (n === undefined) s.unparsed += 1;
    else {
      s.events += n;
      if (n > s.largestBatch) s.largestBatch = n;
    }
    res.statusCode = 200;
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
});

server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
