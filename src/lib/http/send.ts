/**
 * The one outbound HTTP sender: vendor deliveries (src/delivery/), consent webhooks
 * (src/api/webhook-worker.ts) and the upstream verify API (src/consent/upstream/transport.ts) all
 * send through `send`, over a pool of ./pool.ts. What every caller gets from it:
 *
 * - one budget for the whole exchange (connect, headers, body), on the caller's clock;
 * - at most `maxResponseBytes` of a body read, the rest not read;
 * - no redirect followed (a 3xx is an answer like any other);
 * - never a throw: a failure is an outcome (network with its error code, timeout, or a response
 *   with its status and Retry-After), in the terms of the delivery retry policy
 *   (src/delivery/retry-policy.ts) and the verify client's gate;
 * - never a URL or an error message in the result (either may carry a secret from a query
 *   string); an error answer's body only as an excerpt with the caller's secrets masked and
 *   personal data scrubbed.
 */
import type { Dispatcher } from 'undici';
import { maskSecrets } from '../mask-secrets.ts';
import { scrubPiiText } from '../pii.ts';
import { systemClock, type Clock } from '../clock.ts';
import { unrefTimer } from '../every.ts';
import { singleRetryAfter } from '../retry-after.ts';

export interface OutboundRequest {
  method: Dispatcher.HttpMethod;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

/** A 2xx answer whose body says the request failed (a template's successCode): temporary or not. */
export type AnswerRejection = 'transient' | 'final';

/** What one exchange produced. */
export type SendOutcome =
  /**
   * `transient`: the caller's `isTransient` says this error answer is temporary (a template's
   * retryOn), or `answerRejected` called a 2xx a temporary rejection. `rejected`: a 2xx that
   * `answerRejected` called a rejection; delivery treats it as an error answer.
   */
  | { kind: 'response'; status: number; retryAfter?: string; transient?: boolean; rejected?: AnswerRejection }
  | { kind: 'network'; code?: string }
  | { kind: 'timeout' };

export interface SendOptions {
  /** Whole-exchange budget: connect, headers and body. */
  timeoutMs: number;
  /** Aborts the request from outside (shutdown); reported as a network outcome, code ABORTED. */
  signal?: AbortSignal;
  /** Most response-body bytes read; the rest is discarded by closing the stream. Default 64 KiB. */
  maxResponseBytes?: number;
  /** Hand back the bytes read (`SendResult.body`), for a caller that parses a success's body. */
  keepBody?: boolean;
  /** Length (in characters) of the diagnostic excerpt of an error answer's body. Default 256. */
  excerptChars?: number;
  /** Whether an error answer is temporary although its status says otherwise (BoundDestination.transientResponse). */
  isTransient?: (status: number, body: string) => boolean;
  /** Whether an error answer rejects the whole batch for one invalid event (BoundDestination.rejectsBatch). */
  rejectsBatch?: (status: number, body: string) => boolean;
  /**
   * Whether a 2xx answer is a rejection by its body (BoundDestination.answerRejected); given, every
   * 2xx body is read (up to maxResponseBytes) and decoded.
   */
  answerRejected?: (status: number, body: string) => AnswerRejection | undefined;
  /** Values masked out of the excerpt (a receiver may echo a token back in an error message). */
  secretValues?: readonly string[];
  /** Runs the request timer (and, without `now`, measures the duration). Default: the system clock. */
  clock?: Clock;
  /**
   * Measures `durationMs` only. Delivery reads its own (possibly fake) clock here while the timer
   * of a real exchange stays on real time.
   */
  now?: () => number;
}

export interface SendResult {
  outcome: SendOutcome;
  durationMs: number;
  /** Response-body bytes read (at most maxResponseBytes). */
  responseBytes: number;
  /** True when the body was, or was declared (Content-Length), longer than maxResponseBytes. */
  truncated: boolean;
  /**
   * The status arrived but the body did not end: the budget ran out, the caller aborted, or the
   * connection failed. The outcome is still the response (the status is the server's verdict);
   * a caller that needs the whole body reads this.
   */
  interrupted?: 'timeout' | 'aborted' | 'network';
  /** The bytes read, when `keepBody` was set and an answer arrived. */
  body?: Buffer;
  /**
   * Start of the body of an answer that is not a 2xx, secrets masked and personal data scrubbed
   * (scrubPiiText); absent for a 2xx (nothing reports a success's body, and scrubbing every one cost
   * about 20 µs per request) and when there was no body.
   */
  excerpt?: string;
  /** True when the answer rejects the whole batch for one invalid event (options.rejectsBatch said so). */
  rejectsBatch?: true;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_EXCERPT_CHARS = 256;

/**
 * One exchange through `dispatcher.dispatch` with a handler of our own rather than undici's
 * `request()`: no response stream to iterate, no `AbortSignal.timeout` and `AbortSignal.any` per
 * request, and the body is kept only up to `maxResponseBytes`. With one client per request (GA4),
 * a destination sends thousands of these a second on the thread that answers hits, and `request()`
 * with two signals cost about 50 µs of CPU per request more here (docs/performance.md).
 */
export function send(dispatcher: Dispatcher, req: OutboundRequest, options: SendOptions): Promise<SendResult> {
  const clock = options.clock ?? systemClock;
  const now = options.now ?? (() => clock.now());
  const started = now();
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  return new Promise<SendResult>((resolve) => {
    let controller: Dispatcher.DispatchController | undefined;
    /** Why we cut the exchange short; a request still queued in the pool is aborted when it starts. */
    let cutReason: Error | undefined;
    let settled = false;
    let status: number | undefined;
    let retryAfter: string | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;

    const cut = (reason: Error): void => {
      cutReason ??= reason;
      controller?.abort(reason);
    };
    const finish = (result: SendResult): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const failed = (outcome: SendOutcome): SendResult => ({ outcome, durationMs: now() - started, responseBytes: 0, truncated: false });
    const answered = (interrupted?: SendResult['interrupted']): SendResult => {
      const result = responseResult(status!, retryAfter, chunks, size, truncated, now() - started, options);
      if (interrupted !== undefined) result.interrupted = interrupted;
      return result;
    };
    /** The whole-exchange budget ran out, or the caller aborted: the status, once it arrived, is the server's verdict. */
    const end = (outcome: SendOutcome, reason: Error): void => {
      if (settled) return;
      // Settled first: aborting may call onResponseError at once, which must not decide instead.
      finish(status !== undefined ? answered(outcome.kind === 'timeout' ? 'timeout' : 'aborted') : failed(outcome));
      cut(reason);
    };
    // Unref'd like AbortSignal.timeout's timer: a pending request alone does not keep the process up.
    // The abort reasons are DOMExceptions, as AbortSignal's own (TimeoutError, AbortError): they go to
    // undici, never to a caller, who gets the outcome.
    const timer = unrefTimer(clock.setTimeout(() => end({ kind: 'timeout' }, new DOMException('outbound request timed out', 'TimeoutError')), options.timeoutMs));
    const onAbort = (): void => end({ kind: 'network', code: 'ABORTED' }, new DOMException('outbound request aborted', 'AbortError'));
    if (options.signal?.aborted === true) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (cutReason !== undefined) c.abort(cutReason);
      },
      onResponseStart(_c, statusCode, headers) {
        status = statusCode;
        retryAfter = singleRetryAfter(headers['retry-after']);
        // Known too long from the start; what fits is still read (an error answer's excerpt).
        const declared = headers['content-length'];
        if (typeof declared === 'string' && Number(declared) > maxBytes) truncated = true;
      },
      onResponseData(_c, chunk) {
        if (settled) return;
        const room = maxBytes - size;
        if (chunk.length > room) {
          // Enough of a server sending megabytes of error page: the rest is not read. Cutting the
          // exchange costs that socket its keep-alive, which is the right trade for an abnormal answer.
          chunks.push(chunk.subarray(0, room));
          size += room;
          truncated = true;
          finish(answered());
          cut(new DOMException('outbound response too large', 'AbortError'));
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      },
      onResponseEnd() {
        finish(answered());
      },
      onResponseError(_c, err) {
        // The status is the server's verdict; a body that fails to arrive afterwards does not change it.
        finish(status !== undefined ? answered(classifyError(err).kind === 'timeout' ? 'timeout' : 'network') : failed(classifyError(err)));
      },
    };
    try {
      const url = new URL(req.url);
      dispatcher.dispatch(
        {
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: req.method,
          headers: req.headers,
          body: req.body ?? null,
          // Backstops for the clock's timer (which a fake clock in tests may never fire).
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        },
        handler,
      );
    } catch (err) {
      finish(failed(classifyError(err)));
    }
  });
}

/** An answer; the body is decoded only for an error answer (the only kind anything reads as text). */
function responseResult(
  status: number,
  retryAfter: string | undefined,
  chunks: Buffer[],
  size: number,
  truncated: boolean,
  durationMs: number,
  options: SendOptions,
): SendResult {
  const outcome: SendOutcome = { kind: 'response', status };
  if (retryAfter !== undefined) outcome.retryAfter = retryAfter;
  const result: SendResult = { outcome, durationMs, responseBytes: size, truncated };
  let success = status >= 200 && status <= 299;
  if (success && options.keepBody !== true && options.answerRejected === undefined) return result;
  const buffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  if (options.keepBody === true) result.body = buffer;
  const text = success && options.answerRejected === undefined ? '' : buffer.toString('utf8');
  if (success && options.answerRejected !== undefined) {
    const rejected = options.answerRejected(status, text);
    if (rejected !== undefined) {
      outcome.rejected = rejected;
      if (rejected === 'transient') outcome.transient = true;
      success = false;
    }
  }
  if (success) return result;
  if (status >= 400 && options.isTransient?.(status, text) === true) outcome.transient = true;
  if (status >= 400 && options.rejectsBatch?.(status, text) === true) result.rejectsBatch = true;
  if (buffer.length > 0) result.excerpt = responseExcerpt(text, options.secretValues ?? [], options.excerptChars ?? DEFAULT_EXCERPT_CHARS);
  return result;
}

/**
 * An error answer may echo what it refused (emails, phones, IPs, hashed ids) or a token: the
 * excerpt goes to logs, dead letters and webhook records, so it is masked and scrubbed whole
 * before it is cut (a cut could split a secret and leave its start unmasked).
 */
function responseExcerpt(text: string, secretValues: readonly string[], chars: number): string {
  return scrubPiiText(maskSecrets(text, secretValues)).slice(0, chars);
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** An exchange's error by its code (its own or its cause's), never by its message. */
function classifyError(err: unknown): Exclude<SendOutcome, { kind: 'response' }> {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  if (code !== undefined && TIMEOUT_CODES.has(code)) return { kind: 'timeout' };
  return code === undefined ? { kind: 'network' } : { kind: 'network', code };
}
