import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { explainBody, explainBodyLimit, readExplainBody, type ExplainOptions } from '../api/explain.ts';
import type { Config } from '../config/load.ts';
import { loadConfigWithTemplates } from '../destinations/load-config.ts';
import { resolveDestinations, type Resolution, type TemplateCatalog } from '../destinations/resolve.ts';
import { PayloadTooLargeError, TagwardenError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { createHeldQueue, createPipeline } from '../pipeline/index.ts';
import { consentResolverOf, signalReadingOf } from '../pipeline/from-config.ts';
import { EXIT_FAILED, EXIT_OK, UsageError, type CommandIo } from './exit.ts';

/**
 * `tagwarden explain <hit-file>`: the answer `POST /debug/explain` gives to the file's JSON, from
 * the same function (explainBody in src/api/explain.ts), for the config as the server loads it.
 * The pipeline is the server's (createPipeline, with the server's resolver and signal reading)
 * minus what a hit that is only explained never reaches: no consent store, no upstream, no
 * delivery. The route uses no more of them either: it asks nobody and sends nothing, and uses an
 * answer only when one is cached for the visitor; a process that has just started has none, so
 * this answers as a server that has just started would. Nothing is opened but the two files.
 */

export interface ExplainCommand {
  configPath: string;
  hitFile: string;
  /** The client's address (the route's is the explain request's); none when absent. */
  ip: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  clock: Clock;
  json: boolean;
}

/** The explain options of the server's pipeline for `config`, with nothing behind it to ask or send to. */
export function offlineExplain(config: Config, templates: TemplateCatalog, clock: Clock): { options: ExplainOptions; disabled: Resolution['disabled'] } {
  const resolution = resolveDestinations(config, templates);
  // Metrics nobody reads: evaluate counts nothing, and the default process metrics are not wanted.
  const metrics = createMetrics({ defaultMetrics: false });
  const pipeline = createPipeline({
    site: config.site,
    resolver: consentResolverOf(config),
    destinations: resolution.destinations,
    // Never called by evaluate: an explained hit is not sent, held or settled.
    delivery: { enqueue: () => 'internal_error' },
    pending: createHeldQueue({ hold: config.hold, clock, metrics, settle: () => undefined }),
    metrics,
    log: createLogger('silent'),
    clock,
  });
  const { maxEventBytes, maxBatchBytes, maxBatchEvents, maxHeaderBytes } = config.server;
  return {
    options: { maxEventBytes, maxBatchBytes, maxBatchEvents, maxHeaderBytes, pipeline, destinations: resolution.destinations, identity: signalReadingOf(config) },
    disabled: resolution.disabled,
  };
}

/** The hit file's bytes (refused unread beyond the route's body limit), or why it cannot be read. */
function readHitFile(path: string, limit: number): Buffer | { unreadable: string } {
  const abs = resolve(path);
  try {
    const size = statSync(abs).size;
    if (size > limit) throw new PayloadTooLargeError(`the hit file is ${size} bytes, more than ${limit} (twice the larger of server.maxEventBytes and server.maxBatchBytes, as the route)`);
    return readFileSync(abs);
  } catch (e) {
    if (e instanceof TagwardenError) throw e;
    return { unreadable: `cannot read the hit file ${abs}: ${(e as Error).message}` };
  }
}

export async function explainCommand(c: ExplainCommand, io: CommandIo): Promise<number> {
  if (c.ip !== undefined && isIP(c.ip) === 0) throw new UsageError(`--ip: "${c.ip.slice(0, 64)}" is not an IPv4 or IPv6 address`);
  // Config and template problems fail as the server's start would (exit 1, every problem listed).
  const { config, templates } = loadConfigWithTemplates(c.configPath, c.env);
  const { options, disabled } = offlineExplain(config, templates, c.clock);
  let answer: Record<string, unknown>;
  try {
    const bytes = readHitFile(c.hitFile, explainBodyLimit(options));
    if (!Buffer.isBuffer(bytes)) {
      io.err(`tagwarden: ${bytes.unreadable}\n`);
      return EXIT_FAILED;
    }
    const body = await readExplainBody(bytes, options);
    // No explain request around the file: its own headers and query string are none (a raw hit
    // carries its own), the client's address is --ip.
    answer = await explainBody(options, body, { headers: {}, query: '', ip: c.ip }, new Date(c.clock.now()));
  } catch (e) {
    if (!(e instanceof TagwardenError)) throw e;
    // What the route would answer: its status, code, message and details.
    io.err(`tagwarden: ${c.hitFile}: ${e.message} (${e.code}; /debug/explain answers ${e.status})\n`);
    if (e.details !== undefined) io.err(`${JSON.stringify(e.details, null, 2)}\n`);
    return EXIT_FAILED;
  }
  io.out(`${JSON.stringify(answer, null, c.json ? undefined : 2)}\n`);
  if (!c.json) for (const d of disabled) io.err(`note: destination ${d.id} is disabled (${d.reason}): not explained\n`);
  return EXIT_OK;
}
