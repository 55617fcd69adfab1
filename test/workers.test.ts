import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import { openDb } from '../src/store/open.ts';
import { exited, startVendor } from './helpers.ts';

/**
 * server.workers: 2 on the real process (src/main.ts, docs/deployment.md): one port answered by
 * two workers, consent changes through one seen by the other (SQLite, no change feed), /metrics
 * adding up both, a rolling restart (SIGHUP) that drops no request, and a SIGTERM that delivers
 * every acknowledged hit to the vendor and exits 0. The steps share one supervisor: each start
 * costs seconds on a loaded machine.
 */
const ROOT = join(import.meta.dirname, '..');
const SITE = 'shop';

interface Answer {
  status: number;
  body: string;
}

/** One request; `agent` keeps its connection (which worker answers depends on it), else a new connection each time. */
function call(port: number, method: string, path: string, o: { body?: string; headers?: Record<string, string>; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: o.agent ?? false, headers: { ...(o.body === undefined ? {} : { 'content-type': 'application/json' }), ...o.headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    // A request nobody answers fails the test here rather than at the test's timeout.
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path}: no answer in 15 s`)));
    req.end(o.body);
  });
}

const hit = (id: string): string =>
  JSON.stringify({ type: 'track', event: 'Order Completed', messageId: id, anonymousId: `anon-${id}`, context: { consent: { categoryPreferences: { analytics: true } } } });

describe('server.workers: 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-workers-'));
  let vendor: Awaited<ReturnType<typeof startVendor>>;
  let child: ChildProcess;
  let port: number;
  let out = '';
  let key = '';
  const acknowledged = new Set<string>();
  /** Resolves once the output from offset `from` on matches. */
  const waitFor = (pattern: RegExp, timeoutMs: number, from = 0): Promise<void> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${String(pattern)} in time; output:\n${out.slice(-3000)}`)), timeoutMs);
      const check = (): void => {
        if (!pattern.test(out.slice(from))) return;
        clearTimeout(t);
        child.stdout!.off('data', check);
        resolve();
      };
      child.stdout!.on('data', check);
      check();
    });

  beforeAll(async () => {
    vendor = await startVendor();
    const dbUrl = `sqlite:${join(dir, 'tw.db')}`;
    // An API key in the store before the start (as `tagwarden keys create` would make it).
    const db = await openDb(dbUrl);
    key = (await createApiKey(db, { label: 'test', scopes: ['consent:write', 'consent:read'] })).key;
    await db.close();
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0, workers: 2, shutdownGraceMs: 5_000 },
        site: { id: SITE, dataControlMode: 'opt-in', categories: { analytics: {} } },
        store: { url: dbUrl },
        // A killed worker's hits are taken over within two lease periods.
        delivery: { journal: { leaseMs: 2_000 } },
        api: { rateLimit: { perMinute: 10_000 } },
        destinations: [{ id: 'hook', template: 'webhook', endpoint: `${vendor.url}/hook`, settings: { url: `${vendor.url}/hook` }, consent: { categories: ['analytics'] } }],
        log: { level: 'info' },
      }),
    );
    child = spawn(process.execPath, ['src/main.ts', '--config', config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(/every worker listening/, 60_000);
    port = Number(/"port":(\d+),"site"/.exec(out)![1]);
  }, 70_000);

  afterAll(async () => {
    writeFileSync(join(tmpdir(), 'tw-workers-test-output.log'), out);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await vendor.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two workers answer on one port', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const r = await call(port, 'GET', '/healthz');
      seen.add((JSON.parse(r.body) as { worker: number }).worker);
    }
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it('a withdrawal through one worker reaches the cache of the other', async () => {
    // One kept connection per worker: the supervisor hands each new connection to the next worker.
    const agents = new Map<number, Agent>();
    for (let i = 0; i < 20 && agents.size < 2; i++) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const worker = (JSON.parse((await call(port, 'GET', '/healthz', { agent })).body) as { worker: number }).worker;
      if (agents.has(worker)) agent.destroy();
      else agents.set(worker, agent);
    }
    const [a, b] = [agents.get(1)!, agents.get(2)!];
    const auth = { authorization: `Bearer ${key}` };
    const verify = async (agent: Agent): Promise<unknown> =>
      (JSON.parse((await call(port, 'GET', `/api/v1/public/sites/${SITE}/consent/verify?visitor_id=v-relay`, { agent, headers: auth })).body) as { categories: unknown }).categories;
    const write = (agent: Agent, analytics: boolean): Promise<Answer> =>
      call(port, 'POST', '/api/v1/consent', { agent, headers: auth, body: JSON.stringify({ visitorId: 'v-relay', categories: { analytics } }) });
    try {
      expect((await write(a, true)).status).toBe(200);
      // Worker 2 reads it, and caches it (for up to a minute without a change arriving).
      expect(await verify(b)).toEqual({ analytics: true });
      expect((await write(a, false)).status).toBe(200);
      let seen: unknown;
      for (let i = 0; i < 50; i++) {
        seen = await verify(b);
        if (JSON.stringify(seen) === JSON.stringify({ analytics: false })) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toEqual({ analytics: false });
    } finally {
      for (const agent of agents.values()) agent.destroy();
    }
  });

  it('/metrics on either worker adds up both', async () => {
    const before = received(await call(port, 'GET', '/metrics'));
    for (let i = 0; i < 20; i++) {
      const r = await call(port, 'POST', '/v1/track', { body: hit(`m-${i}`) });
      expect(r.status).toBe(200);
      acknowledged.add(`m-${i}`);
    }
    // Two scrapes over new connections: each worker in turn answers for both.
    for (let i = 0; i < 2; i++) {
      const text = (await call(port, 'GET', '/metrics')).body;
      expect(received({ status: 200, body: text }) - before).toBe(20);
      expect(text).toMatch(/^tagwarden_workers 2$/m);
      expect(text).toMatch(/^tagwarden_ready 1$/m);
    }
  });

  it('a rolling restart (SIGHUP) replaces both workers and every request is answered 200', async () => {
    const failures: string[] = [];
    let n = 0;
    let loading = true;
    const load = async (lane: number): Promise<void> => {
      while (loading) {
        const id = `r-${lane}-${n++}`;
        try {
          const r = await call(port, 'POST', '/v1/track', { body: hit(id) });
          if (r.status === 200) acknowledged.add(id);
          else failures.push(`${id}: ${r.status} ${r.body}`);
        } catch (err) {
          failures.push(`${id}: ${String(err)}`);
        }
      }
    };
    const lanes = [load(1), load(2)];
    // Both lanes under way before the roll: a few answers in.
    const answered = async (atLeast: number): Promise<void> => {
      while (n < atLeast) await new Promise((r) => setTimeout(r, 20));
    };
    await answered(10);
    // Scraped before: the supervisor keeps what it saw of a worker that leaves, so the sum never goes down.
    const before = received(await call(port, 'GET', '/metrics'));
    const rolledFrom = out.length;
    child.kill('SIGHUP');
    await waitFor(/rolling restart done/, 110_000, rolledFrom);
    // And some answered by the new workers after it.
    await answered(n + 10);
    loading = false;
    await Promise.all(lanes);
    expect(failures).toEqual([]);
    expect(n).toBeGreaterThan(10);
    expect(received(await call(port, 'GET', '/metrics'))).toBeGreaterThanOrEqual(before);
    const seen = new Set<number>();
    for (let i = 0; i < 10 && seen.size < 2; i++) seen.add((JSON.parse((await call(port, 'GET', '/healthz')).body) as { worker: number }).worker);
    // Replacements are numbered after the first two.
    expect([...seen].every((w) => w > 2)).toBe(true);
  }, 120_000);

  it('a worker killed with SIGKILL is restarted, and the hits it had acknowledged reach the vendor through the others', async () => {
    const pids = [...out.matchAll(/"worker":(\d+),"port"/g)].map((m) => Number(m[1]));
    const victim = pids[pids.length - 1]!;
    for (let i = 0; i < 10; i++) {
      const r = await call(port, 'POST', '/v1/track', { body: hit(`k-${i}`) });
      expect(r.status).toBe(200);
      acknowledged.add(`k-${i}`);
    }
    const killedAt = out.length;
    process.kill(victim, 'SIGKILL');
    await waitFor(/worker died; restarting it/, 10_000, killedAt);
    await waitFor(/Tagwarden listening/, 60_000, killedAt);
    // Delivered by the killed worker before it died, or taken over by the others once its lease lapsed.
    for (let i = 0; i < 600 && missingFrom(vendor.hits, acknowledged).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(missingFrom(vendor.hits, acknowledged)).toEqual([]);
  }, 70_000);

  it('SIGTERM stops every worker, every acknowledged hit reaches the vendor, exit 0', async () => {
    child.kill('SIGTERM');
    await exited(child);
    expect(child.exitCode).toBe(0);
    expect(missingFrom(vendor.hits, acknowledged)).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(30);
  }, 30_000);
});

/** tagwarden_events_received_total added over its series. */
function received(r: Answer): number {
  let sum = 0;
  for (const line of r.body.split('\n')) if (line.startsWith('tagwarden_events_received_total{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Acknowledged messageIds the vendor has not received. */
function missingFrom(hits: readonly { body: unknown }[], acknowledged: ReadonlySet<string>): string[] {
  const delivered = new Set<string>();
  for (const h of hits) for (const e of (h.body as { batch?: { messageId: string }[] }).batch ?? []) delivered.add(e.messageId);
  return [...acknowledged].filter((id) => !delivered.has(id));
}
