import { EventEmitter, once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../helpers.ts';

/** One request the browser sent to Tagwarden, as Tagwarden received it, and Tagwarden's answer. */
export interface Exchange {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  status: number;
  answerHeaders: Record<string, string | string[] | undefined>;
  answer: string;
}

/**
 * A pass-through in front of Tagwarden on 127.0.0.1 that keeps every exchange, so a test can read
 * the exact bodies a real client sent and wait until it has sent them (an event, not a sleep).
 * Headers (Origin, Content-Type, preflight headers) are forwarded unchanged both ways.
 */
export async function startRecorder(target: string): Promise<{
  url: string;
  exchanges: Exchange[];
  waitFor: (what: string, done: (exchanges: readonly Exchange[]) => boolean, timeoutMs?: number) => Promise<void>;
  close: () => Promise<void>;
}> {
  const exchanges: Exchange[] = [];
  const changed = new EventEmitter();
  const to = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => {
          const text = Buffer.concat(parts);
          exchanges.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, status: answer.statusCode ?? 0, answerHeaders: answer.headers, answer: text.toString('utf8') });
          res.writeHead(answer.statusCode ?? 502, answer.headers).end(text);
          changed.emit('exchange');
        });
      });
      upstream.on('error', (e) => {
        res.writeHead(502).end(String(e));
      });
      upstream.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  const waitFor = (what: string, done: (exchanges: readonly Exchange[]) => boolean, timeoutMs = 8000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(exchanges)) return;
        clearTimeout(timer);
        changed.off('exchange', check);
        resolve();
      };
      // A deadline, not a sleep: it only fires when the client never sends what is awaited.
      const timer = setTimeout(() => {
        changed.off('exchange', check);
        reject(new Error(`timed out waiting for ${what}; Tagwarden received: ${exchanges.map((e) => `${e.method} ${e.path} ${e.status}`).join(', ') || 'nothing'}`));
      }, timeoutMs);
      changed.on('exchange', check);
      check();
    });

  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exchanges, waitFor, close: () => closeServer(server) };
}
