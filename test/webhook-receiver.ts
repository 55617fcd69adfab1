import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from './helpers.ts';

/** One request a receiver got. */
export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  body: string;
  /** The request's path (with its query). */
  path: string;
}

export interface Receiver {
  /** `http://127.0.0.1:<port>` followed by the path asked for. */
  url: string;
  hits: ReceivedHook[];
  close(): Promise<void>;
}

/**
 * A webhook receiver on 127.0.0.1 that records every request; `respond` answers the n-th one
 * (0-based), 204 by default. `path` is only appended to the URL handed out: every path is received.
 */
export async function startReceiver(path: string, respond: (res: ServerResponse, n: number) => void = (res) => res.writeHead(204).end()): Promise<Receiver> {
  const hits: ReceivedHook[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '' });
      respond(res, hits.length - 1);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, hits, close: () => closeServer(server) };
}
