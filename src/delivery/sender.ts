/**
 * Sends one VendorRequest over undici and reports what happened in the retry policy's terms.
 * Never throws: every failure becomes an AttemptOutcome. Never reports a URL or an error message
 * (either may carry a secret from a query string); only status, header values the policy needs,
 * error codes and a masked excerpt of the response body.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { VendorRequest } from '../destinations/types.ts';
import { maskSecrets } from '../observability/mask.ts';
import { scrubPiiText } from '../observability/pii.ts';
import type { AttemptOutcome } from './retry-policy.ts';

export interface DeliveryAgentOptions {
  /** Most sockets per vendor origin. Default 16. */
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
    connections: options.connectionsPerOrigin ?? 16,
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
  /** Start of the body, secrets masked and personal data scrubbed (scrubPiiText); absent when there was no body. */
  excerpt?: string;
  /** True when the answer rejects the whole batch for one invalid event (options.rejectsBatch said so). */
  rejectsBatch?: true;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_EXCERPT_CHARS = 256;

export async function sendVendorRequest(
  dispatcher: Dispatcher,
  req: VendorRequest,
  options: SendOptions,
): Promise<SendResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;

  let response: Dispatcher.ResponseData;
  try {
    response = await request(req.url, {
      dispatcher,
      method: req.method,
      headers: req.headers,
      body: req.body ?? null,
      signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  } catch (err) {
    return { outcome: classifyError(err, options.signal), durationMs: now() - started, responseBytes: 0, truncated: false };
  }

  const outcome: AttemptOutcome = { kind: 'response', status: response.statusCode };
  const retryAfter = singleHeader(response.headers['retry-after']);
  if (retryAfter !== undefined) outcome.retryAfter = retryAfter;

  // The status is the vendor's verdict; a body that fails to arrive afterwards does not change it.
  const { buffer, truncated } = await readCapped(response.body, maxBytes);
  const result: SendResult = { outcome, durationMs: now() - started, responseBytes: buffer.length, truncated };
  const text = buffer.toString('utf8');
  if (response.statusCode >= 400 && options.isTransient?.(response.statusCode, text) === true) outcome.transient = true;
  if (response.statusCode >= 400 && options.rejectsBatch?.(response.statusCode, text) === true) result.rejectsBatch = true;
  if (buffer.length > 0) {
    // A vendor's error may echo the payload it refused (emails, phones, IPs, hashed ids): the
    // excerpt goes to logs and dead letters, so it is scrubbed whole before it is cut.
    result.excerpt = scrubPiiText(maskSecrets(text, options.secretValues ?? [])).slice(0, options.excerptChars ?? DEFAULT_EXCERPT_CHARS);
  }
  return result;
}

/**
 * Reads at most maxBytes of the body, then destroys the stream: a vendor sending megabytes of
 * error page must not cost us memory. Destroying costs that socket its keep-alive, which is the
 * right trade for an abnormal response.
 */
async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<{ buffer: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      const room = maxBytes - size;
      if (buf.length > room) {
        chunks.push(buf.subarray(0, room));
        size += room;
        truncated = true;
        break;
      }
      chunks.push(buf);
      size += buf.length;
    }
  } catch {
    // A body error after the status arrived is not a delivery failure (see caller).
  } finally {
    if (truncated) body.destroy();
  }
  return { buffer: Buffer.concat(chunks, size), truncated };
}

/** Repeated Retry-After headers are only meaningful when they agree. */
function singleHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  const first = value[0];
  return first !== undefined && value.every((v) => v === first) ? first : undefined;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function classifyError(err: unknown, external: AbortSignal | undefined): AttemptOutcome {
  if (external?.aborted) return { kind: 'network', code: 'ABORTED' };
  const e = err as { name?: unknown; code?: unknown; cause?: { code?: unknown } } | null;
  if (e?.name === 'TimeoutError') return { kind: 'timeout' };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  if (code !== undefined && TIMEOUT_CODES.has(code)) return { kind: 'timeout' };
  return code === undefined ? { kind: 'network' } : { kind: 'network', code };
}
