/**
 * A fake CookieBoss-compatible consent verify API for bench/verify.ts:
 *
 *   GET /api/v1/public/sites/:siteId/consent/verify?visitor_id=X   (header X-API-Key)
 *
 * answers 200, after `--delay-ms` (default 20), with consent granting every category:
 * `{"hasConsent":true,"categories":{"marketing":true,"analytics":true,"functional":true,"necessary":true},"consentedAt":"<iso>","geoCountry":"DE"}`.
 * A missing or wrong key gets 401, another path 404 (both counted, neither is an answer).
 * `--per-minute <n>` (default 0: no limit) is the plan's rate limit, as CookieBoss states it: a
 * request beyond n in the last 60 s (a sliding window of the requests it answered) gets 429 with
 * `Retry-After` (whole seconds until the oldest of them leaves the window), and is counted.
 *
 * It counts the verify requests, the distinct visitors asked about, the visitors asked more than
 * once, the most requests in flight at once and the time of the first and last request.
 * GET /__stats returns the counts; POST /__reset zeroes them. On SIGTERM it prints one JSON line
 * `{"summary": {...}}` with them and exits 0.
 *
 *   node bench/servers/verify.ts [--delay-ms 20] [--key bench-verify-key] [--per-minute 0]
 */
import { createServer } from 'node:http';
import { arg, reportReady, tieToParent } from './common.ts';
import { BENCH_VERIFY_API_KEY } from './config.ts';

export interface VerifyServerStats {
  /** Well-formed verify requests with the right key (each one answered after the delay). */
  requests: number;
  /** Distinct `visitor_id` values among them. */
  distinctVisitors: number;
  /** Visitors asked about more than once. */
  repeatedVisitors: number;
  /** Requests refused with 401 (missing or wrong X-API-Key). */
  unauthorized: number;
  /** Requests to any other path, or without visitor_id (404 / 400). */
  other: number;
  /** Requests refused with 429 (beyond `--per-minute`); not in `requests`. */
  rateLimited: number;
  perMinute: number;
  /** Verify requests being answered now, and the most at once. */
  inFlight: number;
  maxInFlight: number;
  /** Epoch ms of the first and last verify request (undefined before the first). */
  firstAt?: number;
  lastAt?: number;
  delayMs: number;
}

tieToParent();

const delayMs = Number(arg('delay-ms', '20'));
if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`--delay-ms must be a number >= 0, got ${arg('delay-ms')}`);
const apiKey = arg('key', BENCH_VERIFY_API_KEY);
const perMinute = Number(arg('per-minute', '0'));
if (!Number.isInteger(perMinute) || perMinute < 0) throw new Error(`--per-minute must be an integer >= 0, got ${arg('per-minute')}`);
/** Times (ms) of the requests answered in the last 60 s, oldest first: the rate limit's window. */
const answeredAt: number[] = [];
let oldest = 0;
// Consent given a day before the bench: older than anything a hit would carry.
const consentedAt = new Date(Date.now() - 86_400_000).toISOString();
const answer = JSON.stringify({
  hasConsent: true,
  categories: { marketing: true, analytics: true, functional: true, necessary: true },
  consentedAt,
  geoCountry: 'DE',
});
const VERIFY_PATH = /^\/api\/v1\/public\/sites\/[^/]+\/consent\/verify$/;

let asked = new Map<string, number>();
let inFlight = 0;
let stats: VerifyServerStats = fresh();

function fresh(): VerifyServerStats {
  return { requests: 0, distinctVisitors: 0, repeatedVisitors: 0, unauthorized: 0, other: 0, rateLimited: 0, perMinute, inFlight: 0, maxInFlight: 0, delayMs };
}

function snapshot(): VerifyServerStats {
  return { ...stats, distinctVisitors: asked.size, inFlight };
}

const server = createServer((req, res) => {
  req.resume();
  const url = new URL(req.url ?? '/', 'http://verify.local');
  if (url.pathname === '/__stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(snapshot()));
    return;
  }
  if (url.pathname === '/__reset' && req.method === 'POST') {
    asked = new Map();
    stats = fresh();
    res.statusCode = 204;
    res.end();
    return;
  }
  const visitor = url.searchParams.get('visitor_id');
  if (req.method !== 'GET' || !VERIFY_PATH.test(url.pathname) || visitor === null || visitor === '') {
    stats.other += 1;
    res.statusCode = visitor === null || visitor === '' ? 400 : 404;
    res.end();
    return;
  }
  if (req.headers['x-api-key'] !== apiKey) {
    stats.unauthorized += 1;
    res.statusCode = 401;
    res.setHeader('content-type', 'application/json');
    res.end('{"error":"invalid API key"}');
    return;
  }
  const now = Date.now();
  if (perMinute > 0) {
    while (oldest < answeredAt.length && answeredAt[oldest]! <= now - 60_000) oldest++;
    if (oldest > 4096) {
      answeredAt.splice(0, oldest);
      oldest = 0;
    }
    if (answeredAt.length - oldest >= perMinute) {
      stats.rateLimited += 1;
      res.statusCode = 429;
      res.setHeader('retry-after', String(Math.max(1, Math.ceil((answeredAt[oldest]! + 60_000 - now) / 1000))));
      res.setHeader('content-type', 'application/json');
      res.end('{"error":"rate limit exceeded"}');
      return;
    }
    answeredAt.push(now);
  }
  stats.requests += 1;
  stats.firstAt ??= now;
  stats.lastAt = now;
  const seen = asked.get(visitor) ?? 0;
  if (seen === 1) stats.repeatedVisitors += 1;
  asked.set(visitor, seen + 1);
  inFlight += 1;
  if (inFlight > stats.maxInFlight) stats.maxInFlight = inFlight;
  setTimeout(() => {
    inFlight -= 1;
    res.statusCode = 200;
    res.setHeader('content-type', 'application/json');
    res.end(answer);
  }, delayMs);
});

server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => reportReady(server));

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.stdout.write(`${JSON.stringify({ summary: snapshot() })}\n`, () => process.exit(0));
});
