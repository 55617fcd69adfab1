/**
 * `npm run bench`: the ingest benchmark (bench/ingest.ts), every target of issue 16's ratios in one
 * run (about 3 minutes at the defaults), ending with one table of the ratios and their goals. Options:
 *
 *   --duration <s>      measured seconds per target (default 10)
 *   --warmup <s>        warm-up seconds per target, not measured (default 3)
 *   --connections <n>   concurrent keep-alive connections (default 50)
 *   --rounds <n>        run the sequence of targets n times; ratios use the medians (default 1)
 *   --visitors <n>      distinct visitors the hits cycle over (default 100)
 *   --rate <n>          fixed offered load in req/s for every target (default: as fast as possible)
 *   --targets <list>    comma-separated, default (in this order) tagwarden,nojournal,receipts,workers2,ingest,
 *                       forward,naiveproxy,express,raw; also storeonly.
 *                       tagwarden: 3 destinations (--destinations), journal on; nojournal: without a store;
 *                       storeonly: with the store, journal off; receipts: journal and decision receipts on;
 *                       workers2: tagwarden with server.workers: 2 (node:cluster; skipped with a message when
 *                       the build's config does not know the key); ingest: no destinations, no store;
 *                       forward: the webhook alone, journal on; naiveproxy: Express 5 + http-proxy-middleware
 *                       forwarding each hit to the same sink; express, raw: bare baselines
 *   --log <level>       Tagwarden's log level (default warn)
 *   --destinations <l>  destinations of tagwarden, nojournal, storeonly, receipts, workers2: comma-separated among
 *                       meta,ga4,webhook, or none (default all three); ingest and forward have their own
 *   --event <name>      track event name (default purchase)
 *   --client <name>     segment (POST /v1/track, default), ga4 (POST /g/collect) or pixel (POST /tr)
 *   --profile <dir>     run Tagwarden with --cpu-prof writing into <dir>, and print the hot spots
 *   --sink-delay-ms <n> the fake vendors answer each request n ms after reading it (default 0): a vendor's
 *                       round trip, which the naive proxy waits for on every hit
 *
 *   --suite <name>      another bench instead, its options after it: tcf (bench/tcf-worst.ts), memory
 *                       (bench/cache-memory.ts), import (bench/csv-import.ts), verify (bench/verify.ts),
 *                       consent-api (bench/consent-api.ts), small (tcf, memory and import in turn)
 *
 * With the journal on (target tagwarden) it also prints the journal's group commits over each
 * measured run (transactions/s, hits per transaction, read from Tagwarden's /metrics before and
 * after), and the ratios of the journal on against journal off, store only and Express.
 *
 * Exits 0 whether or not the targets hold (a benchmark measures, it does not gate); exits 1 when
 * the bench itself could not run. Every child process is stopped on exit, and a watchdog ends a
 * run that takes far longer than planned.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { installExitHooks } from './children.ts';
import { positive } from './args.ts';
import { machineLine, watchdog } from './tally.ts';
import { BENCH_CLIENTS, type BenchClient } from './event.ts';
import { formatReport, KNOWN_TARGETS, runIngestBench, TARGET_NAMES, type TargetName } from './ingest.ts';


const SUITES: Readonly<Record<string, string>> = {
  tcf: 'tcf-worst.ts',
  memory: 'cache-memory.ts',
  import: 'csv-import.ts',
  verify: 'verify.ts',
  'consent-api': 'consent-api.ts',
};

/** `--suite <name> [its options]`: runs that bench in its own process; the exit code is the last one's. */
function runSuite(name: string, rest: string[]): number {
  const names = name === 'small' ? ['tcf', 'memory', 'import'] : [name];
  let status = 0;
  for (const n of names) {
    const script = SUITES[n];
    if (script === undefined) throw new Error(`unknown suite ${n} (known: ingest, ${Object.keys(SUITES).join(', ')}, small)`);
    console.log(`\n## bench ${n}: node bench/${script} ${rest.join(' ')}\n`);
    // --expose-gc for the memory bench (it re-runs itself with it otherwise; one process less).
    const nodeArgs = n === 'memory' ? ['--expose-gc'] : [];
    const r = spawnSync(process.execPath, [...nodeArgs, fileURLToPath(new URL(`./${script}`, import.meta.url)), ...rest], { stdio: 'inherit' });
    status = r.status ?? 1;
  }
  return status;
}

async function main(): Promise<void> {
  const suiteAt = process.argv.indexOf('--suite');
  if (suiteAt !== -1 && process.argv[suiteAt + 1] !== 'ingest') {
    const rest = [...process.argv.slice(2, suiteAt), ...process.argv.slice(suiteAt + 2)];
    process.exitCode = runSuite(process.argv[suiteAt + 1] ?? '', rest);
    return;
  }
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '1' },
      visitors: { type: 'string', default: '100' },
      rate: { type: 'string' },
      targets: { type: 'string', default: TARGET_NAMES.join(',') },
      log: { type: 'string', default: 'warn' },
      destinations: { type: 'string', default: 'meta,ga4,webhook' },
      event: { type: 'string', default: 'purchase' },
      client: { type: 'string', default: 'segment' },
      profile: { type: 'string' },
      'sink-delay-ms': { type: 'string', default: '0' },
      suite: { type: 'string' },
    },
    strict: true,
  });
  if (!(BENCH_CLIENTS as readonly string[]).includes(values.client)) throw new Error(`unknown client ${values.client} (known: ${BENCH_CLIENTS.join(', ')})`);
  const targets = values.targets.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of targets) if (!(KNOWN_TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target ${t} (known: ${KNOWN_TARGETS.join(', ')})`);
  const durationSec = positive('duration', values.duration, false);
  const warmupSec = positive('warmup', values.warmup, false);
  const rounds = positive('rounds', values.rounds, true);
  const destinations = values.destinations === 'none' ? [] : values.destinations.split(',').map((d) => d.trim());
  for (const d of destinations) if (!['meta', 'ga4', 'webhook'].includes(d)) throw new Error(`unknown destination ${d} (known: meta, ga4, webhook, or none)`);
  let profileDir: string | undefined;
  if (values.profile !== undefined) {
    profileDir = resolve(values.profile);
    mkdirSync(profileDir, { recursive: true });
  }

  installExitHooks();
  watchdog('bench', rounds * targets.length * (warmupSec + durationSec + 45) * 1000 + 30_000);
  console.log(machineLine());
  const report = await runIngestBench({
    client: values.client as BenchClient,
    durationSec,
    warmupSec,
    connections: positive('connections', values.connections, true),
    rounds,
    visitors: positive('visitors', values.visitors, true),
    ...(values.rate === undefined ? {} : { rate: positive('rate', values.rate, true) }),
    targets: targets as TargetName[],
    logLevel: values.log,
    destinations,
    eventName: values.event,
    ...(profileDir === undefined ? {} : { profileDir }),
    sinkDelayMs: positive('sink-delay-ms', values['sink-delay-ms'], false, true),
  });
  console.log(formatReport(report).join('\n'));
}

main().catch((err: unknown) => {
  console.error('bench failed:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
