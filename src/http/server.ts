import type { RateLimitedLog } from '../observability/rate-limited-log.ts';
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HeadersTooLargeError, MalformedBodyError, RequestTimeoutError, toErrorBody, type TagwardenError } from '../errors.ts';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
}

/**
 * How often Node looks for requests past their timeouts. Node checks `headersTimeout` and
 * `requestTimeout` only on this interval (`connectionsCheckingInterval`, default 30 s), so a slow
 * client was held up to 30 s past the configured time: headers cut at ~30 s with 10 s configured.
 * A twentieth of the shorter timeout keeps the cut within 5% of it; the check walks only the
 * connections with a request in progress, in C++.
 * https://nodejs.org/api/http.html#httpcreateserveroptions-requestlistener
 */
export function checkingIntervalMs(limits: Pick<ServerLimits, 'headersTimeoutMs' | 'requestTimeoutMs'>): number {
  return Math.min(1000, Math.max(5, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 20)));
}

/**
 * The HTTP server with its hardening: slow-loris timeouts (`headersTimeoutMs` for the request
 * headers, `requestTimeoutMs` for the whole request, both counted from its first byte, or from the
 * connection for its first request, answered 408 and closed), a header size limit and JSON error
 * bodies even for errors Node's parser raises before any route runs (431, 400, 408).
 * `refusals`: where those are logged (warn, rate-limited per reason, no request id: no request was
 * read, and nothing the client sent); absent: not logged.
 */
export function createHttpServer(limits: ServerLimits, listener: RequestListener, refusals?: RateLimitedLog): Server {
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      // Node refuses a headers timeout over the request timeout (the headers are part of the
      // request, so such a bound could never apply): the shorter one bounds both.
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(limits),
    },
    listener,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // An answer already begun on this socket cannot be followed by another: close it (as Node's
    // own handler does, node/lib/_http_server.js socketOnError).
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || err.code === 'ECONNRESET' || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const e = clientErrorOf(err, limits);
    const reason = CLIENT_ERROR_REASONS[e.status] ?? 'malformed_request';
    refusals?.('warn', `server:${reason}`, { status: e.status, code: e.code, reason }, 'request refused by the server');
    const body = JSON.stringify(toErrorBody(e));
    const answer = `HTTP/1.1 ${STATUS_LINES[e.status] ?? '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
    // Closed both ways once the answer is out: the server's sockets are half-open by default, and
    // a slow client would otherwise keep its side, and its drip of bytes, open.
    socket.end(answer, () => socket.destroy());
  });
  return server;
}

const CLIENT_ERROR_REASONS: Readonly<Record<number, string>> = { 408: 'request_timeout', 431: 'headers_too_large' };

const STATUS_LINES: Readonly<Record<number, string>> = {
  400: '400 Bad Request',
  408: '408 Request Timeout',
  431: '431 Request Header Fields Too Large',
};

function clientErrorOf(err: NodeJS.ErrnoException, limits: ServerLimits): TagwardenError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError(`request headers exceed ${limits.maxHeaderBytes} bytes`);
    // Raised by Node for both timeouts: the headers not in within headersTimeout, or the whole
    // request not within requestTimeout.
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RequestTimeoutError(`the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, all of it within ${limits.requestTimeoutMs} ms)`);
    default:
      return new MalformedBodyError('malformed HTTP request');
  }
}
