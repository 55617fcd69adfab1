import { createServer, type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { HeadersTooLargeError, MalformedBodyError, toErrorBody, type TagwardenError } from '../errors.ts';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
}

/**
 * The HTTP server with its hardening: slow-loris timeouts, a header size limit and JSON error
 * bodies even for errors Node's parser raises before any route runs (431, 400).
 * https://nodejs.org/api/http.html#httpcreateserveroptions-requestlistener
 */
export function createHttpServer(limits: ServerLimits, listener: RequestListener): Server {
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
    },
    listener,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const e: TagwardenError =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new HeadersTooLargeError(`request headers exceed ${limits.maxHeaderBytes} bytes`)
        : new MalformedBodyError('malformed HTTP request');
    const status = e.status === 431 ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const body = JSON.stringify(toErrorBody(e));
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
