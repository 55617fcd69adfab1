// Tagwarden's entry point: the only place that reads argv, listens and exits.
import cluster from 'node:cluster';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { startSupervisor } from './cluster/supervisor.ts';
import { connectWorker, type WorkerLink } from './cluster/worker-link.ts';
import { configPathFrom, processEnv, type Config } from './config/load.ts';
import { loadConfigWithTemplates } from './destinations/load-config.ts';
import type { TemplateCatalog } from './destinations/resolve.ts';
import { ConfigError, TagwardenError } from './errors.ts';
import { createHttpServer } from './http/server.ts';
import { systemClock } from './lib/clock.ts';
import { createLogger } from './observability/logger.ts';
import { createRateLimitedLog } from './observability/rate-limited-log.ts';
import { openDb } from './store/open.ts';

/**
 * How a worker of several listens. Empty: node:cluster's default, the supervisor accepts and hands
 * connections round-robin (measured against SO_REUSEPORT listeners in docs/performance.md).
 */
const WORKER_LISTEN: { reusePort?: boolean; exclusive?: boolean } = {};
/** How long a worker told to stop keeps answering on the connections it has, with its listener closed. */
const WORKER_DRAIN_MS = 500;

/** The usual reasons a port cannot be had, said in one line (the operator's to fix, like the config); anything else as it came. */
function listenError(err: unknown, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ConfigError(`port ${port} is already in use (set PORT or server.port)`);
  if (code === 'EACCES') return new ConfigError(`cannot listen on port ${port}: permission denied (ports below 1024 need privileges; set PORT or server.port)`);
  if (code === 'EADDRNOTAVAIL') return new ConfigError('cannot listen on server.host: no such local address');
  return err;
}

main().catch((err: unknown) => {
  // Config errors list every problem with its path; print them plainly, not as a stack.
  if (err instanceof TagwardenError) console.error(`tagwarden: ${err.message}`);
  else console.error(err);
  process.exit(1);
});

/** The host of the listening line: the configured one, `localhost` for every interface, IPv6 in brackets. */
function listenHost(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

async function main(): Promise<void> {
  const env = processEnv();
  const path = configPathFrom(process.argv.slice(2), env);
  // The same checks as `tagwarden validate` (src/destinations/load-config.ts).
  const { config, templates } = loadConfigWithTemplates(path, env);
  const log = createLogger(config.log.level);
  // `auto` within the schema's bound: a 128-core host gets 64 workers, not 128 SQLite writers.
  const workers = config.server.workers === 'auto' ? Math.min(64, availableParallelism()) : config.server.workers;
  if (workers > 1 && cluster.isPrimary) return supervise(config, log, workers);
  const link = cluster.isWorker ? connectWorker(process, cluster.worker?.id ?? 0, systemClock) : undefined;
  return serve(config, templates, link === undefined ? log : log.child({ worker: process.pid }), link);
}

/**
 * server.workers above 1: this process forks the workers (each runs this file and serve()) and
 * supervises them (src/cluster/supervisor.ts). SIGTERM/SIGINT stop them all, SIGHUP replaces them
 * one at a time; it exits once every worker has.
 */
async function supervise(config: Config, log: Logger, workers: number): Promise<void> {
  // Created and migrated once, here, before any worker opens it (migrations are also safe to race).
  const db = await openDb(config.store.url, { durability: config.store.durability });
  await db.close();
  const supervisor = startSupervisor({ workers, log, clock: systemClock, graceMs: config.server.shutdownGraceMs });
  process.on('SIGTERM', () => supervisor.stop('SIGTERM'));
  process.on('SIGINT', () => supervisor.stop('SIGINT'));
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'replacing the workers one at a time');
    void supervisor.roll();
  });
  log.info({ workers, port: config.server.port }, `Tagwarden starting ${workers} workers`);
  supervisor.started.catch(() => undefined);
  process.exit(await supervisor.done);
}

async function serve(config: Config, templates: TemplateCatalog, log: Logger, link: WorkerLink | undefined): Promise<void> {
  // The consent store is opened (created and migrated on first start) before any hit is taken.
  const db = await openDb(config.store.url, { durability: config.store.durability });
  const app = createApp(config, { logger: log, templates, db, ...(link === undefined ? {} : { peers: link }) });
  link?.serve(app.metrics.registry);
  // Hits acknowledged before a restart or a crash and not finished resume before new ones arrive.
  await app.recover();
  // Requests Node's parser refuses before any route (431, 408, 400): 10 lines a minute per reason.
  const server = createHttpServer(config.server, app.handler, createRateLimitedLog({ log, maxPerInterval: 10, intervalMs: 60_000, clock: systemClock }));
  server.listen({ port: config.server.port, host: config.server.host, ...WORKER_LISTEN });
  try {
    await once(server, 'listening');
  } catch (err) {
    throw listenError(err, config.server.port);
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.server.port;
  log.info(
    { port, site: config.site.id, mode: config.site.dataControlMode, destinations: app.destinations.destinations.map((d) => d.config.id) },
    `Tagwarden listening on http://${listenHost(config.server.host)}:${port}`,
  );
  link?.listening();

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceMs: config.server.shutdownGraceMs }, 'shutting down');
    // A second signal, or the grace period plus a margin, forces the exit.
    const force = setTimeout(() => {
      log.error('shutdown deadline passed; exiting');
      process.exit(1);
    }, config.server.shutdownGraceMs + 5_000);
    force.unref();
    server.close();
    server.closeIdleConnections();
    // A worker of several first only stops listening: a connection the supervisor handed it just
    // before may still carry its request, which is answered (not refused with 503) while the other
    // workers take the new connections.
    (link === undefined ? Promise.resolve() : delay(WORKER_DRAIN_MS).then(() => server.closeIdleConnections()))
      .then(() => app.shutdown(config.server.shutdownGraceMs))
      .then(() => db.close())
      .then(() => {
        server.closeAllConnections();
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A worker's SIGHUP (a closed terminal sends it to the whole group) is the supervisor's: a rolling restart.
  if (link !== undefined) process.on('SIGHUP', () => undefined);
}

