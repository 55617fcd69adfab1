/**
 * The hottest requests Tagwarden serves, hits from the clients, answered without going through
 * Express. Express's routing, its request/response decoration and its middleware chain cost about
 * 20–30 µs of CPU per request on the bench machine (docs/performance.md), as much as validating,
 * deciding and rendering the hit.
 *
 * Only the ordinary case is taken: a known path, an allowed Host, a server not shutting down, and
 * whatever each route's handler checks (method, body type and size, a valid hit). Everything else
 * goes to the Express app unchanged, with any body already read handed over (`preloadBody`), so
 * refusals, errors and their JSON bodies come from the one implementation in the Express routes
 * and middleware. test/fast-path.test.ts checks both paths answer alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { preloadText, readLimitedText } from '../http/body.ts';
import type { Metrics } from '../observability/metrics.ts';
import { normalizeHost } from '../proxy/host-guard.ts';
import type { TagwardenError } from '../errors.ts';
import type { HitSink } from './hit-sink.ts';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Answers one hit, or calls `pass()` (before answering) to hand the request to Express.
 * `query` is the raw query string ('' when none).
 */
export type FastHandler = (req: IncomingMessage, res: ServerResponse, query: string, pass: () => void) => void;

/** What every client's fast route needs from the app; `accept` and `commit` as for the Express routes. */
export interface HitFastPathOptions extends HitSink {
  trustProxyHops: number;
  metrics: Metrics;
  /** False once shutdown began. */
  accepting: () => boolean;
  now?: () => Date;
}

export interface FastPathOptions {
  allowedHosts: readonly string[];
  /** False once shutdown began: requests then take the Express routes, which refuse hits with 503. */
  accepting: () => boolean;
}

/** Wraps the Express app: requests for the routes' exact paths go to their handlers, the rest to `fallback`. */
export function withFastPaths(opts: FastPathOptions, routes: ReadonlyMap<string, FastHandler>, fallback: RequestListener): RequestListener {
  const hosts = new Set(opts.allowedHosts.map(normalizeHost));

  function hostAllowed(req: IncomingMessage): boolean {
    if (hosts.size === 0) return true;
    const host = req.headers.host;
    return host !== undefined && hosts.has(normalizeHost(host));
  }

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    // An exact, known path is in origin form with nothing to traverse: the host guard's path
    // checks hold by construction (it judges the path only, never the query string).
    const handler = routes.get(q === -1 ? url : url.slice(0, q));
    if (handler === undefined || !hostAllowed(req) || !opts.accepting()) {
      fallback(req, res);
      return;
    }
    handler(req, res, q === -1 ? '' : url.slice(q + 1), () => fallback(req, res));
  };
}

/** What a body reader gives: the body read, or the error reading it. */
export type ReadOutcome<T extends object> = T | { error: TagwardenError };

/**
 * For the clients that read their own bodies: `read` reads the body and `answer` answers with it.
 * A read error (too large, cut off, malformed), a shutdown that began meanwhile, or a refusal
 * thrown by `answer` hands the request to Express instead, with the outcome kept on the request
 * (`keep`, a preload the Express route reads instead of the stream).
 */
export function answerWithBody<T extends object>(read: (done: (outcome: ReadOutcome<T>) => void) => void, keep: (outcome: ReadOutcome<T>) => void, accepting: () => boolean, pass: () => void, answer: (body: T) => void): void {
  read((outcome) => {
    if ('error' in outcome || !accepting()) {
      keep(outcome);
      pass();
      return;
    }
    try {
      answer(outcome);
    } catch {
      keep(outcome);
      pass();
    }
  });
}

/** answerWithBody for a text body within `limit` bytes (GA4 lines). */
export function answerWithText(req: IncomingMessage, limit: number, accepting: () => boolean, pass: () => void, answer: (text: string) => void): void {
  answerWithBody<{ text: string }>(
    (done) => readLimitedText(req, limit, done),
    (outcome) => preloadText(req, outcome),
    accepting,
    pass,
    (body) => answer(body.text),
  );
}
