/**
 * Several Tagwarden workers on one port, as `server.workers` above 1 runs them: this process is the
 * supervisor (src/cluster/supervisor.ts, the one src/main.ts uses) and forks bench/servers/tagwarden.ts
 * as its workers on one SQLite file, with every argument after `--` passed on to them.
 *
 *   node bench/servers/workers.ts --workers 2 --mode round-robin|reuse-port -- --sink http://127.0.0.1:PORT ...
 *
 * `round-robin`: node:cluster's default, this process accepts every connection and hands it to
 * the workers in turn; `reuse-port`: each worker listens itself with SO_REUSEPORT and the kernel
 * spreads the connections. Prints the ready line once every worker listens, then
 * `{"workers":[pid, ...]}` (the bench measures their CPU with this one's).
 */
import cluster from 'node:cluster';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startSupervisor } from '../../src/cluster/supervisor.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { arg, tieToParent } from './common.ts';

tieToParent();
const workers = Number(arg('workers', '2'));
const mode = arg('mode', 'round-robin');
if (mode !== 'round-robin' && mode !== 'reuse-port') throw new Error('--mode round-robin|reuse-port');
const passed = process.argv.includes('--') ? process.argv.slice(process.argv.indexOf('--') + 1) : [];

// A fixed port: with SO_REUSEPORT every worker must be told the same one (port 0 would give each its own).
const probe = createServer().listen(0, '127.0.0.1');
await once(probe, 'listening');
const port = (probe.address() as AddressInfo).port;
probe.close();
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-workers-'));

cluster.setupPrimary({
  exec: fileURLToPath(new URL('./tagwarden.ts', import.meta.url)),
  args: [...passed, '--supervised', '--port', String(port), '--db', join(dir, 'tagwarden.db'), ...(mode === 'reuse-port' ? ['--reuse-port'] : [])],
});
const log = createLogger('warn', pino.destination({ dest: 2, sync: false }));
const supervisor = startSupervisor({ workers, log, clock: systemClock, graceMs: 5_000 });
process.on('SIGTERM', () => supervisor.stop('SIGTERM'));
await supervisor.started;
process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
process.stdout.write(`${JSON.stringify({ workers: Object.values(cluster.workers ?? {}).map((w) => w?.process.pid) })}\n`);
const code = await supervisor.done;
rmSync(dir, { recursive: true, force: true });
process.exit(code);
