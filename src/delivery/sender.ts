/**
 * Sends one VendorRequest over undici and reports what happened in the retry policy's terms.
 * Never throws: every failure becomes an AttemptOutcome. Never reports a URL or an error message
 * (either may carry a secret from a query string); only status, header values the policy needs,
 * error codes and a masked excerpt of the response body.
 */
import { Agent, type Dispatcher } from 'undici';
import type { VendorRequest } from '../destinations/types.ts';
import { maskSecrets } from '../observability/mask.ts';
import { scrubPiiText } from '../observability/pii.ts';
import type { AttemptOutcome } from './retry-policy.ts';

export interface DeliveryAgentOptions {
  /** Most sockets per vendor origin (opened as needed). Default 128, GA4's maxInFlight. */
  connectionsPerOrigin?: number;
  /** How long an idle keep-alive socket is kept when the server does not say. Default 4000 ms. */
  keepAliveTimeoutMs?: number;
  /** Upper bound on a server-announced keep-alive. Default 60000 ms. */
  keepAliveMaxTimeoutMs?: number;
  /** TCP + TLS connect timeout. Default 10000 ms. */
  connectTimeoutMs?: number;
}

/** The one shared connection pool for all vendor traffic: keep-alive, a pool per origin. */
export function createDeliveryAgent(options: DeliveryAgentOptions = {}): Agent {
  return new Agent({
    connections: options.connectionsPerOrigin ?? 128,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
    keepAliveMaxTimeout: options.keepAliveMaxTimeoutMs ?? 60_000,
    connect: { timeout: options.connectTimeoutMs ?? 10_000 },
  });
}

export interface SendOptions {
  /** Whole-exchange budget: connect, headers and body. */
  timeoutMs: number;
  /** Aborts the request from outside (shutdown); reported as a network outcome, code ABORTED. */
  signal?: AbortSignal;
  /** Most response-body bytes read; the rest is discarded by closing the stream. Default 64 KiB. */
  maxResponseBytes?: number;
  /** Length (in characters) of the diagnostic excerpt of the body. Default 256. */
  excerptChars?: number;
  /** Whether an error answer is temporary although its status says otherwise (BoundDestination.transientResponse). */
  isTransient?: (status: number, body: string) => boolean;
  /** Whether an error answer rejects the whole batch for one invalid event (BoundDestination.rejectsBatch). */
  rejectsBatch?: (status: number, body: string) => boolean;
  /** Values masked out of the excerpt (a vendor may echo a token back in an error message). */
  secretValues?: readonly string[];
  now?: () => number;
}

export interface SendResult {
  outcome: AttemptOutcome;
  durationMs: number;
  /** Response-body bytes read (at most maxResponseBytes). */
  responseBytes: number;
  /** True when the body was longer than maxResponseBytes. */
  truncated: boolean;
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
export function sendVendorRequest(dispatcher: Dispatcher, req: VendorRequest, options: SendOptions): Promise<SendResult> {
  const now = options.now ?? Date.now;
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
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const answered = (): SendResult => responseResult(status!, retryAfter, Buffer.concat(chunks, size), truncated, now() - started, options);
    /** The whole-exchange budget ran out, or the caller aborted: the status, once it arrived, is the vendor's verdict. */
    const end = (outcome: AttemptOutcome, reason: Error): void => {
      if (settled) return;
      // Settled first: aborting may call onResponseError at once, which must not decide instead.
      finish(status !== undefined ? answered() : { outcome, durationMs: now() - started, responseBytes: 0, truncated: false });
      cut(reason);
    };
    // Unref'd like AbortSignal.timeout's timer: a pending vendor request alone does not keep the process up.
    const timer = setTimeout(() => end({ kind: 'timeout' }, new Error('vendor request timed out')), options.timeoutMs);
    timer.unref();
    const onAbort = (): void => end({ kind: 'network', code: 'ABORTED' }, new Error('vendor request aborted'));
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
        retryAfter = singleHeader(headers['retry-after']);
      },
      onResponseData(_c, chunk) {
        if (settled) return;
        const room = maxBytes - size;
        if (chunk.length > room) {
          // Enough of a vendor sending megabytes of error page: the rest is not read. Cutting the
          // exchange costs that socket its keep-alive, which is the right trade for an abnormal answer.
          chunks.push(chunk.subarray(0, room));
          size += room;
          truncated = true;
          finish(answered());
          cut(new Error('vendor response too large'));
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      },
      onResponseEnd() {
        finish(answered());
      },
      onResponseError(_c, err) {
        // The status is the vendor's verdict; a body that fails to arrive afterwards does not change it.
        finish(status !== undefined ? answered() : { outcome: classifyError(err), durationMs: now() - started, responseBytes: 0, truncated: false });
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
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        },
        handler,
      );
    } catch (err) {
      finish({ outcome: classifyError(err), durationMs: now() - started, responseBytes: 0, truncated: false });
    }
  });
}

/** A response in the retry policy's terms; the body is decoded only for an error answer, the only kind anything reads. */
function responseResult(status: number, retryAfter: string | undefined, buffer: Buffer, truncated: boolean, durationMs: number, options: SendOptions): SendResult {
  const outcome: AttemptOutcome = { kind: 'response', status };
  if (retryAfter !== undefined) outcome.retryAfter = retryAfter;
  const result: SendResult = { outcome, durationMs, responseBytes: buffer.length, truncated };
  if (status >= 200 && status <= 299) return result;
  const text = buffer.toString('utf8');
  if (status >= 400 && options.isTransient?.(status, text) === true) outcome.transient = true;
  if (status >= 400 && options.rejectsBatch?.(status, text) === true) result.rejectsBatch = true;
  if (buffer.length > 0) {
    // A vendor's error may echo the payload it refused (emails, phones, IPs, hashed ids): the
    // excerpt goes to logs and dead letters, so it is scrubbed whole before it is cut.
    result.excerpt = scrubPiiText(maskSecrets(text, options.secretValues ?? [])).slice(0, options.excerptChars ?? DEFAULT_EXCERPT_CHARS);
  }
  return result;
}

/** Repeated Retry-After headers are only meaningful when they agree. */
function singleHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  const first = value[0];
  return first !== undefined && value.every((v) => v === first) ? first : undefined;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function classifyError(err: unknown): AttemptOutcome {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  if (code !== undefined && TIMEOUT_CODES.has(code)) return { kind: 'timeout' };
  return code === undefined ? { kind: 'network' } : { kind: 'network', code };
}
