import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MockAgent, type Agent } from 'undici';
import { maskSecrets } from '../mask-secrets.ts';
import { FakeClock } from '../fake-clock.ts';
import { createPool } from './pool.ts';
import { send } from './send.ts';
import { refusedUrl, startServer, type TestServer } from './test-server.ts';

let agent: Agent;
const servers: TestServer[] = [];

beforeAll(() => {
  agent = createPool('vendors', { connections: 4 });
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

describe('send', () => {
  it('sends method, headers and body, and reports a 2xx', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 200;
      res.end('{"events_received":1}');
    });
    const r = await send(agent, post(`${s.url}/collect?token=abc`), { timeoutMs: 2000 });
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
    for (let i = 0; i < answers.length; i++) flags.push((await send(agent, post(s.url), { timeoutMs: 2000, rejectsBatch })).rejectsBatch);
    expect(flags).toEqual([true, undefined, undefined]);
    // The predicate reads the whole body, not the scrubbed excerpt; a 2xx is never asked about.
    expect(seen).toEqual([[400, answers[0][1]], [400, answers[1][1]]]);
  });

  it('answerRejected: a 2xx whose body names a failure is an error answer with an excerpt (secrets masked); error answers are not asked', async () => {
    const answers = [
      [200, '{"code":0,"message":"OK"}'],
      [200, '{"code":40002,"message":"Invalid parameter for tok-SECRET"}'],
      [200, '{"code":40100,"message":"Too many requests"}'],
      [500, '{"code":50000}'],
    ] as const;
    const s = await server((_req, res, i) => {
      res.statusCode = answers[i]![0];
      res.end(answers[i]![1]);
    });
    const seen: number[] = [];
    const answerRejected = (status: number, body: string) => {
      seen.push(status);
      const code = (JSON.parse(body) as { code: number }).code;
      return code === 0 ? undefined : code === 40100 ? ('transient' as const) : ('final' as const);
    };
    const results = [];
    for (let i = 0; i < answers.length; i++) results.push(await send(agent, post(s.url), { timeoutMs: 2000, answerRejected, secretValues: ['tok-SECRET'] }));
    expect(results.map((r) => r.outcome)).toEqual([
      { kind: 'response', status: 200 },
      { kind: 'response', status: 200, rejected: 'final' },
      { kind: 'response', status: 200, rejected: 'transient', transient: true },
      { kind: 'response', status: 500 },
    ]);
    expect(results[0]!.excerpt).toBeUndefined();
    expect(results[1]!.excerpt).toContain('"code":40002');
    expect(results[1]!.excerpt).not.toContain('tok-SECRET');
    expect(seen).toEqual([200, 200, 200]);
  });

  it('503 with Retry-After: the outcome carries the header for the retry policy, nothing is retried here', async () => {
    const s = await server((_req, res) => {
      res.writeHead(503, { 'retry-after': '1' });
      res.end('busy');
    });
    const r = await send(agent, post(s.url), { timeoutMs: 2000 });
    expect(r.outcome).toEqual({ kind: 'response', status: 503, retryAfter: '1' });
    expect(r.excerpt).toBe('busy');
    expect(s.received).toHaveLength(1);
  });

  it('never follows a redirect: a 3xx is the answer', async () => {
    const s = await server((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: '/elsewhere' }).end();
      else res.end('followed');
    });
    const r = await send(agent, post(`${s.url}/moved`), { timeoutMs: 2000 });
    expect(r.outcome).toEqual({ kind: 'response', status: 302 });
    expect(s.received.map((x) => x.url)).toEqual(['/moved']);
  });

  it('keepBody hands back the bytes of a 2xx (and still no excerpt of a success)', async () => {
    const s = await server((_req, res) => res.end('{"hasConsent":false}'));
    const r = await send(agent, { method: 'GET', url: s.url, headers: {} }, { timeoutMs: 2000, keepBody: true });
    expect(r.outcome).toEqual({ kind: 'response', status: 200 });
    expect(r.body?.toString('utf8')).toBe('{"hasConsent":false}');
    expect(r.excerpt).toBeUndefined();
    expect(r.interrupted).toBeUndefined();
  });

  it('runs its timer on an injected clock: the budget ends when that clock says so, and leaves no timer behind', async () => {
    const s = await server(() => {
      // never respond
    });
    const clock = new FakeClock();
    const pending = send(agent, post(s.url), { timeoutMs: 5_000, clock });
    await new Promise((r) => setTimeout(r, 20));
    clock.advance(4_999);
    clock.advance(1);
    const r = await pending;
    expect(r.outcome).toEqual({ kind: 'timeout' });
    expect(r.durationMs).toBe(5_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a body that stalls after the status keeps the status and says it was interrupted', async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"partial');
    });
    const clock = new FakeClock();
    const pending = send(agent, post(s.url), { timeoutMs: 5_000, clock, keepBody: true });
    while (s.received.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    clock.advance(5_000);
    const r = await pending;
    expect(r.outcome).toEqual({ kind: 'response', status: 200 });
    expect(r.interrupted).toBe('timeout');
  });

  it('a Content-Length over the limit marks the answer truncated before its body is read', async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock.get('https://verify.test').intercept({ path: '/x', method: 'GET' }).reply(200, '{"ok":true}', { headers: { 'content-length': '1000000' } });
    const r = await send(mock, { method: 'GET', url: 'https://verify.test/x', headers: {} }, { timeoutMs: 1000, maxResponseBytes: 100 });
    expect(r.truncated).toBe(true);
    await mock.close();
  });

  it('masks secrets in their URL-encoded form too, before the excerpt is cut', async () => {
    const secret = 'k/ey+1';
    const s = await server((_req, res) => res.writeHead(401).end(`bad key ${encodeURIComponent(secret)} and ${secret}`));
    const r = await send(agent, post(s.url), { timeoutMs: 2000, secretValues: [secret], excerptChars: 20 });
    expect(r.excerpt).toBe('bad key [secret] and');
  });

  it('reports a timeout when the server never answers', async () => {
    const s = await server(() => {
      // never respond
    });
    const started = Date.now();
    const r = await send(agent, post(s.url), { timeoutMs: 200 });
    expect(r.outcome).toEqual({ kind: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r.durationMs).toBeGreaterThanOrEqual(150);
  });

  it('keeps the status when headers arrive but the body stalls past the timeout', async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const r = await send(agent, post(s.url), { timeoutMs: 200 });
    // The vendor's verdict (200) already arrived: the stalled body does not turn it into a failure.
    expect(r.outcome).toEqual({ kind: 'response', status: 200 });
  });

  it('a request still waiting for a pool connection ends on its own budget or abort, before the request holding the connection', async () => {
    const s = await server(() => {
      // never respond: the first request holds the only connection
    });
    const one = createPool('vendors', { connections: 1 });
    try {
      const holder = send(one, post(s.url), { timeoutMs: 5000 });
      const controller = new AbortController();
      const queuedTimeout = send(one, post(s.url), { timeoutMs: 100 });
      const queuedAbort = send(one, post(s.url), { timeoutMs: 5000, signal: controller.signal });
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
    const r = await send(agent, post(s.url), { timeoutMs: 2000, signal: controller.signal });
    expect(r.outcome).toEqual({ kind: 'network', code: 'ABORTED' });
    expect(s.received).toHaveLength(0);
  });

  it('reports connection refused as a network outcome with its code', async () => {
    const r = await send(agent, post(await refusedUrl()), { timeoutMs: 2000 });
    expect(r.outcome).toEqual({ kind: 'network', code: 'ECONNREFUSED' });
  });

  it('reports an external abort as network ABORTED, not as a timeout', async () => {
    const s = await server(() => {
      // never respond
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const r = await send(agent, post(s.url), { timeoutMs: 5000, signal: controller.signal });
    expect(r.outcome).toEqual({ kind: 'network', code: 'ABORTED' });
  });

  it('reads at most maxResponseBytes of a huge body and keeps a short, masked excerpt', async () => {
    const secret = 'EAAB-secret-token';
    const s = await server((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`bad token ${secret} ` + 'y'.repeat(1024 * 1024));
    });
    const r = await send(agent, post(s.url), { timeoutMs: 2000, maxResponseBytes: 64 * 1024, excerptChars: 40, secretValues: [secret] });
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
    const r = await send(agent, post(s.url), { timeoutMs: 2000, excerptChars: 1000 });
    expect(r.excerpt).not.toMatch(/jane|555|203\.0\.113/);
    expect(r.excerpt).toContain('"code":100');
    expect(r.excerpt).toContain('Invalid user_data');
  });

  it('ignores disagreeing repeated Retry-After headers', async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock.get('https://vendor.test').intercept({ path: '/x', method: 'POST' }).reply(429, '', { headers: { 'retry-after': ['1', '5'] } });
    mock.get('https://vendor.test').intercept({ path: '/x', method: 'POST' }).reply(429, '', { headers: { 'retry-after': ['3', '3'] } });
    const a = await send(mock, post('https://vendor.test/x'), { timeoutMs: 1000 });
    const b = await send(mock, post('https://vendor.test/x'), { timeoutMs: 1000 });
    expect(a.outcome).toEqual({ kind: 'response', status: 429 });
    expect(b.outcome).toEqual({ kind: 'response', status: 429, retryAfter: '3' });
    await mock.close();
  });

  it('never includes the URL (query-string secrets) in its result', async () => {
    const r = await send(agent, post(`${await refusedUrl()}/mp?api_secret=s3cr3t`), { timeoutMs: 2000 });
    expect(JSON.stringify(r)).not.toContain('s3cr3t');
  });
});

describe('maskSecrets', () => {
  it('masks plain and URL-encoded forms, ignores empty secrets', () => {
    expect(maskSecrets('a=tok/en+1 b=tok%2Fen%2B1', ['tok/en+1', ''])).toBe('a=[secret] b=[secret]');
  });
});
