import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { createApp, type AppDeps, type TagwardenApp } from '../src/app.ts';
import { parseConfig, type Config } from '../src/config/load.ts';
import { loadTemplates } from '../src/destinations/load.ts';
import { checkDestinations } from '../src/destinations/resolve.ts';
import { createHttpServer } from '../src/http/server.ts';

export interface VendorHit {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A fake vendor on 127.0.0.1 that records every request and answers with `respond`. */
export async function startVendor(respond: (hit: VendorHit) => { status: number; headers?: Record<string, string>; body?: string } = () => ({ status: 200, body: '{}' })) {
  const hits: VendorHit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://vendor');
      const text = Buffer.concat(chunks).toString('utf8');
      const hit: VendorHit = {
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        // JSON bodies parsed; others (GA4 collect lines) kept as text.
        body: text === '' ? undefined : String(req.headers['content-type']).startsWith('application/json') ? (JSON.parse(text) as unknown) : text,
      };
      hits.push(hit);
      const r = respond(hit);
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(r.body ?? '');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, hits, close: () => closeServer(server) };
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

const templates = loadTemplates();

/** Validates a config object as main.ts does (schema + template checks). */
export function testConfig(raw: Record<string, unknown>, env: Record<string, string> = {}): Config {
  return parseConfig(raw, { env, extraChecks: (r) => checkDestinations(r, templates) });
}

/**
 * `upstream.verify` for a fake verify API at `baseUrl` (test/fake-upstream), mapping its `marketing`
 * and `analytics` to the site's `advertising` and `analytics`; `over` replaces any key.
 */
export function upstreamVerify(baseUrl: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    url: `${baseUrl}/api/v1/public/sites/{siteId}/consent/verify?visitor_id={visitorId}`,
    apiKey: 'upstream-key',
    requestsPerMinute: 1000,
    categories: { marketing: 'advertising', analytics: 'analytics' },
    timeoutMs: 2000,
    ...over,
  };
}

/** Starts Tagwarden on 127.0.0.1 with a silent logger (or the given one). */
export async function startTagwarden(config: Config, logger = pino({ level: 'silent' }), extra: Pick<AppDeps, 'db' | 'webhooks' | 'deliveryClock' | 'consentClock'> = {}): Promise<{ app: TagwardenApp; url: string; server: Server; close: () => Promise<void> }> {
  const app = createApp(config, { logger, templates, ...extra });
  await app.recover();
  const server = createHttpServer(config.server, app.handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    app,
    url,
    server,
    close: async () => {
      await app.shutdown(1000);
      await closeServer(server);
    },
  };
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/**
 * A fake vendor and a Tagwarden whose config is built around the vendor's URL, started before the
 * suite's tests and stopped after them. Read `ctx.vendor` and `ctx.tw` inside the tests.
 */
export function withTagwarden(config: (vendorUrl: string) => Record<string, unknown>): {
  vendor: Awaited<ReturnType<typeof startVendor>>;
  tw: Awaited<ReturnType<typeof startTagwarden>>;
} {
  const ctx = {} as { vendor: Awaited<ReturnType<typeof startVendor>>; tw: Awaited<ReturnType<typeof startTagwarden>> };
  beforeAll(async () => {
    ctx.vendor = await startVendor();
    ctx.tw = await startTagwarden(testConfig(config(ctx.vendor.url)));
  });
  afterAll(async () => {
    await ctx.tw.close();
    await ctx.vendor.close();
  });
  return ctx;
}

/**
 * Starts the real server process (src/main.ts under the pinned Node) on a config file; `port`
 * resolves once it listens. For tests that kill it (SIGKILL) or run several.
 */
const spawned = new Set<ChildProcess>();

export function spawnTagwarden(configPath: string): { child: ChildProcess; port: Promise<number> } {
  const child = spawn(process.execPath, ['src/main.ts', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
  const port = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`[tagwarden stderr] ${d.toString()}`));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`tagwarden exited early (${code}): ${out.slice(-2000)}`)));
  });
  return { child, port };
}

/** Resolves once the process has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** Kills every server process a test spawned and did not stop (a failed assertion, a timeout). */
export async function killSpawned(): Promise<void> {
  const left = [...spawned];
  for (const child of left) child.kill('SIGKILL');
  await Promise.all(left.map(exited));
}
