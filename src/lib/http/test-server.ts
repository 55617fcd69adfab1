/**
 * A real HTTP server on 127.0.0.1 for the tests of the outbound sender and its callers: it records
 * what it received and answers with the test's handler (or never, to test timeouts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface TestServer {
  url: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

export type TestHandler = (req: ReceivedRequest, res: http.ServerResponse, index: number) => void;

/** Starts a server on 127.0.0.1, port 0; the handler answers, or never does (to test timeouts). */
export async function startServer(handler: TestHandler = (_req, res) => res.end('ok')): Promise<TestServer> {
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      received.push(rec);
      handler(rec, res, received.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens: a port just released by a closed server. */
export async function refusedUrl(): Promise<string> {
  const server = await startServer();
  await server.close();
  return server.url;
}
