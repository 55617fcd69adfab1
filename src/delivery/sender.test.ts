import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MockAgent, type Agent } from 'undici';
import { maskSecrets } from '../observability/mask.ts';
import { createDeliveryAgent, sendVendorRequest } from './sender.ts';
import { decideRetry } from './retry-policy.ts';
import { refusedUrl, startServer, type TestServer } from './test-helpers.ts';

let agent: Agent;
const servers: TestServer[] = [];

beforeAll(() => {
  agent = createDeliveryAgent({ connectionsPerOrigin: 4 });
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await agent.close();
});

async function server(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const s = await startServer(...args);
  servers.push(s);
  return s;
}

const post = (url: string, body = '{"batch":[1]}') => ({ method: 'POST' as const, url, headers: { 'content-type': 'application/json' }, body });

describe('sendVendorRequest', () => {
  it('sends method, headers and body, and reports a 2xx', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 200;
      res.end('{"events_received":1}');
    });
    const r = await sendVendorRequest(agent, post(`${s.url}/collect?token=abc`), { timeoutMs: 2000 });
    expect(r.outcome).toEqual({ kind: 'response', status: 200 });
    // A success's body is not read for an excerpt: nothing reports it.
    expect(r.excerpt).toBeUndefined();
    expect(r.truncated).toBe(false);
    expect(s.received[0]).toMatchObject({ method: 'POST', url: '/collect?token=abc', body: '{"batch":[1]}' });
    expect(s.received[0]!.headers['content-type']).toBe('application/json');
  });

  it('flags an error answer the template calls a whole-batch rejection (and only an error answer)', async () => {
    const answers = [
      [400, '{"error":{"message":"Invalid parameter","code":100}}'],
      [400, '{"error":{"code":190}}'],
      [200, '{"error":{"code":100}}'],
    ] as const;
    const s = await server((_req, res, i) => {
      res.statusCode = answers[i]![0];
      res.end(answers[i]![1]);
    });
    const seen: [number, string][] = [];
    const rejectsBatch = (status: number, body: string): boolean => {
      seen.push([status, body]);
      return body.includes('"code":100');
    };
    const flags = [];
    for (let i = 0; i < answers.length; i++) flags.push((await sendVendorRequest(agent, post(s.url), { timeoutMs: 2000, rejectsBatch })).rejectsBatch);
    expect(flags).toEqual([true, undefined, undefined]);
    // The predicate reads the whole body, not the scrubbed excerpt; a 2xx is never asked about.
    expect(seen).toEqual([[400, answers[0][1]], [400, answers[1][1]]]);
  });

  // Waiting the delay out is the scheduler's, on its clock (scheduler.test.ts, "honours a Retry-After"): not slept here.
  it('503 with Retry-After, then success: the wait the policy picks honours Retry-After', async () => {
    const s = await server((_req, res, i) => {
      if (i === 0) {
        res.writeHead(503, { 'retry-after': '1' });
        res.end('busy');
      } else {
        res.end('ok');
      }
    });
    const first = await sendVendorRequest(agent, post(s.url), { timeoutMs: 2000 });
    expect(first.outcome).toEqual({ kind: 'response', status: 503, retryAfter: '1' });
    const decision = decideRetry({
      attempt: 1,
      firstAttemptAt: Date.now(),
      now: Date.now(),
      method: 'POST',
      idempotent: true,
      retrySafe: new Set(),
      outcome: first.outcome,
      policy: { maxAttempts: 3, maxTotalMs: 10_000, baseDelayMs: 10, maxDelayMs: 100 },
      random: () => 0.5,
    });
    expect(decision).toMatchObject({ action: 'retry', delayMs: 1000 });
    if (decision.action !== 'retry') return;
    const second = await sendVendorRequest(agent, post(s.url), { timeoutMs: 2000 });
    expect(second.outcome).toEqual({ kind: 'response', status: 200 });
  });

  it('reports a timeout when the server never answers', async () => {
    const s = await server(() => {
      // never respond
    });
    const started = Date.now();
    const r = await sendVendorRequest(agent, post(s.url), { timeoutMs: 200 });
    expect(r.outcome).toEqual({ kind: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r.durationMs).toBeGreaterThanOrEqual(150);
  });

  it('keeps the status when headers arrive but the body stalls past the timeout', async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const r = await sendVendorRequest(agent, post(s.url), { timeoutMs: 200 });
    // The vendor's verdict (200) already arrived: the stalled body does not turn it into a failure.
    expect(r.outcome).toEqual({ kind: 'response', status: 200 });
  });

  it('a request still waiting for a pool connection ends on its own budget or abort, before the request holding the connection', async () => {
    const s = await server(() => {
      // never respond: the first request holds the only connection
    });
    const one = createDeliveryAgent({ connectionsPerOrigin: 1 });
    try {
      const holder = sendVendorRequest(one, post(s.url), { timeoutMs: 5000 });
      const controller = new AbortController();
      const queuedTimeout = sendVendorRequest(one, post(s.url), { timeoutMs: 100 });
      const queuedAbort = sendVendorRequest(one, post(s.url), { timeoutMs: 5000, signal: controller.signal });
      const first = await Promise.race([queuedTimeout.then((r) => ({ r, which: 'queued' })), holder.then((r) => ({ r, which: 'holder' }))]);
      expect(first).toEqual({ which: 'queued', r: expect.objectContaining({ outcome: { kind: 'timeout' } }) });
      controller.abort();
      expect((await queuedAbort).outcome).toEqual({ kind: 'network', code: 'ABORTED' });
    } finally {
      await one.destroy();
    }
  });

  it('an already aborted signal sends nothing', async () => {
    const s = await server((_req, res) => res.end('ok'));
    const controller = new AbortController();
    controller.abort();
    const r = await sendVendorRequest(agent, post(s.url), { timeoutMs: 2000, signal: controller.signal });
    expect(r.outcome).toEqual({ kind: 'network', code: 'ABORTED' });
    expect(s.received).toHaveLength(0);
  });

  it('reports connection refused as a network outcome with its code', async () => {
    const r = await sendVendorRequest(agent, post(await refusedUrl()), { timeoutMs: 2000 });
    expect(r.outcome).toEqual({ kind: 'network', code: 'ECONNREFUSED' });
  });

  it('reports an external abort as network ABORTED, not as a timeout', async () => {
    const s = await server(() => {
      // never respond
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const r = await sendVendorRequest(agent, post(s.url), { timeoutMs: 5000, signal: controller.signal });
    expect(r.outcome).toEqual({ kind: 'network', code: 'ABORTED' });
  });

  it('reads at most maxResponseBytes of a huge body and keeps a short, masked excerpt', async () => {
    const secret = 'EAAB-secret-token';
    const s = await server((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`bad token ${secret} ` + 'y'.repeat(1024 * 1024));
    });
    const r = await sendVendorRequest(agent, post(s.url), { timeoutMs: 2000, maxResponseBytes: 64 * 1024, excerptChars: 40, secretValues: [secret] });
    expect(r.outcome).toEqual({ kind: 'response', status: 400 });
    expect(r.responseBytes).toBe(64 * 1024);
    expect(r.truncated).toBe(true);
    expect(r.excerpt).toHaveLength(40);
    expect(r.excerpt).toContain('[secret]');
    expect(r.excerpt).not.toContain('EAAB');
  });

  it("regression: a vendor's error body that echoes the payload put raw email, phone and IP in the log", async () => {
    const s = await server((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Invalid user_data: jane.doe@example.com, +1 650 555 1212 from 203.0.113.9', code: 100, fbtrace_id: 'A1b2' }, user_data: { em: 'jane.doe@example.com' } }));
    });
    const r = await sendVendorRequest(agent, post(s.url), { timeoutMs: 2000, excerptChars: 1000 });
    expect(r.excerpt).not.toMatch(/jane|555|203\.0\.113/);
    expect(r.excerpt).toContain('"code":100');
    expect(r.excerpt).toContain('Invalid user_data');
  });

  it('ignores disagreeing repeated Retry-After headers', async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock.get('https://vendor.test').intercept({ path: '/x', method: 'POST' }).reply(429, '', { headers: { 'retry-after': ['1', '5'] } });
    mock.get('https://vendor.test').intercept({ path: '/x', method: 'POST' }).reply(429, '', { headers: { 'retry-after': ['3', '3'] } });
    const a = await sendVendorRequest(mock, post('https://vendor.test/x'), { timeoutMs: 1000 });
    const b = await sendVendorRequest(mock, post('https://vendor.test/x'), { timeoutMs: 1000 });
    expect(a.outcome).toEqual({ kind: 'response', status: 429 });
    expect(b.outcome).toEqual({ kind: 'response', status: 429, retryAfter: '3' });
    await mock.close();
  });

  it('never includes the URL (query-string secrets) in its result', async () => {
    const r = await sendVendorRequest(agent, post(`${await refusedUrl()}/mp?api_secret=s3cr3t`), { timeoutMs: 2000 });
    expect(JSON.stringify(r)).not.toContain('s3cr3t');
  });
});

describe('maskSecrets', () => {
  it('masks plain and URL-encoded forms, ignores empty secrets', () => {
    expect(maskSecrets('a=tok/en+1 b=tok%2Fen%2B1', ['tok/en+1', ''])).toBe('a=[secret] b=[secret]');
  });
});
