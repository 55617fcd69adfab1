/**
 * `server.workers`: how several processes on one port should share the connections, measured
 * (docs/performance.md, "Several workers on one host"). Runs the same Tagwarden (bench/servers/tagwarden.ts,
 * three destinations on the local sink, journal on one SQLite file) as one process, then as
 * `--workers` cluster workers under the supervisor (bench/servers/workers.ts) in each mode:
 *
 * - `round-robin`: node:cluster's default, the supervising process accepts and hands each
 *   connection to a worker over IPC;
 * - `reuse-port`: every worker has its own SO_REUSEPORT listener and the kernel spreads connections.
 *
 * For each: hits/s (2xx), p99, and the CPU of every Tagwarden process (supervisor and workers,
 * from /proc) per hit. autocannon keeps `--connections` keep-alive connections open, so the
 * figures are mostly the request path; `--fresh` sends `Connection: close` on every request, which
 * makes each hit a new connection (what the supervisor's accept-and-hand-over costs shows there).
 *
 *   node bench/workers-mode.ts [--workers 2] [--duration 10] [--warmup 3] [--connections 50] [--rounds 1] [--fresh] [--journal on|off]
 *
 * `--journal off` runs Tagwarden without a store (bench/servers/tagwarden.ts): the processes then
 * share nothing but the port, which isolates what the distribution of connections costs.
 *
 * A measurement, not a gate: it prints and exits 0.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { positive } from './args.ts';
import { startChild, type ChildHandle } from './children.ts';
import { eventFactory } from './event.ts';
import { processCpuSeconds } from './proc-cpu.ts';
import { machineLine } from './tally.ts';
import { responseTally } from './tally.ts';

type Mode = 'single' | 'round-robin' | 'reuse-port';
const MODES: readonly Mode[] = ['single', 'round-robin', 'reuse-port'];
const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));

interface Figures {
  mode: Mode;
  hitsPerSec: number;
  p99Ms: number;
  cores: number;
  usPerHit: number;
  non2xx: number;
}

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '1' },
    fresh: { type: 'boolean', default: false },
    journal: { type: 'string', default: 'on' },
  },
});
const workers = positive('workers', values.workers, true);
const duration = positive('duration', values.duration, true);
const warmup = positive('warmup', values.warmup, true, true);
const connections = positive('connections', values.connections, true);
const rounds = positive('rounds', values.rounds, true);
const factory = eventFactory(Math.random().toString(36).slice(2, 8), 100);
const next = { seq: 0 };

function cpuOf(pids: readonly number[]): number {
  return pids.reduce((n, pid) => n + (processCpuSeconds(pid) ?? 0), 0);
}

async function hammer(port: number, seconds: number, pids: readonly number[]): Promise<Omit<Figures, 'mode'>> {
  const tally = responseTally();
  const before = cpuOf(pids);
  const started = performance.now();
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${factory.path}`,
    method: 'POST',
    connections,
    duration: seconds,
    timeout: 10,
    headers: { 'content-type': factory.contentType, 'user-agent': 'tagwarden-bench', ...(values.fresh ? { connection: 'close' } : {}) },
    requests: [{ setupRequest: (req) => ({ ...req, body: factory.body(next.seq++) }) }],
  });
  instance.on('response', (_c: unknown, status: number, _b: number, ms: number) => tally.add(status, ms));
  const result = await instance;
  const wall = (performance.now() - started) / 1000;
  const cpu = cpuOf(pids) - before;
  const sorted = Float64Array.from(tally.latencies).sort();
  return {
    hitsPerSec: tally.ok / result.duration,
    p99Ms: sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!,
    cores: cpu / wall,
    usPerHit: tally.ok === 0 ? NaN : (cpu * 1e6) / tally.ok,
    non2xx: tally.non2xx,
  };
}

async function run(mode: Mode): Promise<Figures> {
  let sink: ChildHandle | undefined;
  let server: ChildHandle | undefined;
  try {
    sink = await startChild('sink', here('./servers/sink.ts'), []);
    const twArgs = ['--sink', `http://127.0.0.1:${sink.port}`, '--log', 'warn', '--destinations', 'meta,ga4,webhook', '--journal', values.journal];
    server =
      mode === 'single'
        ? await startChild('tagwarden', here('./servers/tagwarden.ts'), twArgs)
        : await startChild(mode, here('./servers/workers.ts'), ['--workers', String(workers), '--mode', mode, '--', ...twArgs], { readyTimeoutMs: 60_000 });
    // The supervisor's second line names its workers; measured with it.
    const isList = (m: unknown): m is { workers: number[] } => typeof m === 'object' && m !== null && 'workers' in m;
    for (let i = 0; mode !== 'single' && i < 100 && !server.messages.some(isList); i++) await sleep(20);
    const listed = server.messages.find(isList);
    const pids = [server.pid, ...(listed?.workers ?? [])];
    console.error(`${mode}: processes ${pids.join(', ')}; warm-up ${warmup}s`);
    if (warmup > 0) await hammer(server.port, warmup, pids);
    await sleep(1_000);
    console.error(`${mode}: measuring ${duration}s with ${connections} connections${values.fresh ? ' (a new connection per hit)' : ''}`);
    return { mode, ...(await hammer(server.port, duration, pids)) };
  } finally {
    await server?.stop();
    await sink?.stop();
  }
}

const results: Figures[] = [];
for (let round = 1; round <= rounds; round++) for (const mode of MODES) results.push(await run(mode));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
console.log(machineLine());
console.log(`journal ${values.journal}, workers ${workers}, ${connections} connections${values.fresh ? ', Connection: close' : ' (keep-alive)'}, ${duration}s per run, ${rounds} round(s), medians`);
console.log('| mode | hits/s | p99 ms | Tagwarden CPU (cores) | CPU µs per hit | non-2xx |');
console.log('|:--|--:|--:|--:|--:|--:|');
for (const mode of MODES) {
  const rs = results.filter((r) => r.mode === mode);
  const label = mode === 'single' ? 'one process (workers: 1)' : `${workers} workers, ${mode}`;
  console.log(
    `| ${label} | ${median(rs.map((r) => r.hitsPerSec)).toFixed(0)} | ${median(rs.map((r) => r.p99Ms)).toFixed(1)} | ${median(rs.map((r) => r.cores)).toFixed(2)} | ${median(rs.map((r) => r.usPerHit)).toFixed(0)} | ${rs.reduce((n, r) => n + r.non2xx, 0)} |`,
  );
}
