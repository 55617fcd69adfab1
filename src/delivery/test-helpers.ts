/**
 * Test doubles for delivery: a minimal BoundDestination that posts `{batch: items}` as JSON,
 * and a real HTTP server on 127.0.0.1 that records what it received. No test reaches the internet.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BatchLimits, BoundDestination, VendorRequest } from '../destinations/types.ts';
import type { Event } from '../ingest/event.ts';
import type { RenderedItem } from './batcher.ts';
import type { RetrySafeFailure } from './retry-policy.ts';

/** The hand-driven clock the upstream verify tests use: time moves only on `advance`. */
export { FakeClock } from '../consent/upstream/test-helpers.ts';

export interface FakeDestinationOptions {
  id?: string;
  url: string;
  method?: VendorRequest['method'];
  limits?: Partial<BatchLimits>;
  idempotent?: boolean;
  /** The template's `request.retrySafe`; default none. */
  retrySafe?: RetrySafeFailure[];
  secretValues?: string[];
  /** The template's retryOn verdict on an error answer; default: never temporary. */
  transientResponse?: (status: number, body: string) => boolean;
  /** The template's bisectOn verdict on an error answer; default: never a whole-batch rejection. */
  rejectsBatch?: (status: number, body: string) => boolean;
}

export function fakeDestination(options: FakeDestinationOptions): BoundDestination {
  const idempotent = options.idempotent ?? true;
  return {
    id: options.id ?? 'fake',
    templateId: 'fake',
    limits: { maxEvents: 10, maxBytes: 100_000, lingerMs: 50, ...options.limits },
    idempotent,
    retrySafe: new Set(options.retrySafe ?? []),
    secretValues: options.secretValues ?? [],
    transientResponse: options.transientResponse ?? (() => false),
    rejectsBatch: options.rejectsBatch ?? (() => false),
    redactions: [],
    needsItems: true,
    render(event: Event) {
      const rendered: RenderedItem = { ok: true, groupKey: 'all', envelope: {}, item: event, messageId: event.messageId };
      if (idempotent) rendered.idempotencyKey = event.messageId;
      return rendered;
    },
    buildRequest(_envelope, items) {
      return {
        method: options.method ?? 'POST',
        url: options.url,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ batch: items }),
      };
    },
  };
}

/** A rendered event without going through render(): item `{id, pad}` sized by `padBytes`. */
export function renderedItem(messageId: string, opts: { groupKey?: string; padBytes?: number; idempotencyKey?: string } = {}): RenderedItem {
  const item: RenderedItem = {
    ok: true,
    groupKey: opts.groupKey ?? 'all',
    envelope: { group: opts.groupKey ?? 'all' },
    item: { id: messageId, pad: 'x'.repeat(opts.padBytes ?? 0) },
    messageId,
  };
  item.idempotencyKey = opts.idempotencyKey ?? messageId;
  return item;
}

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

/** Items of a `{batch: [...]}` body as the fake destination sends them. */
export function batchIds(body: string): string[] {
  const parsed = JSON.parse(body) as { batch: { id?: string; messageId?: string }[] };
  return parsed.batch.map((i) => i.id ?? i.messageId ?? '');
}
