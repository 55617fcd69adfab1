/**
 * Two builds in one process, measured in alternated rounds: parse, validate and the pipeline
 * (decide, render, batch, deliver to an undici MockAgent) with a SQLite store, as
 * `bench/stages.ts --stage process --store` does, once with this checkout's src/ and once with
 * another's. Both builds run under the same load at nearly the same time, which is what a
 * shared machine leaves to compare: on the 2-core VM with other work on it, separate runs of one
 * build spread by ±30% while the paired rounds here keep their order.
 *
 *   node bench/stages-ab.ts --other /path/to/other/checkout [--events 15000] [--rounds 6]
 *
 * The other checkout is a plain copy of another commit (`git archive <commit> | tar -x -C dir`);
 * its modules load beside this one's (different paths, separate module graphs). It prints the
 * median CPU µs per event of each and the ratio this / other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { MockAgent } from 'undici';
import { positive } from './args.ts';
import { eventFactory } from './event.ts';
import { benchConfig } from './servers/config.ts';

const { values } = parseArgs({
  options: { other: { type: 'string' }, events: { type: 'string', default: '15000' }, rounds: { type: 'string', default: '6' } },
  strict: true,
});
if (values.other === undefined) throw new Error('--other <checkout> is required');
const total = positive('events', values.events, true);
const rounds = positive('rounds', values.rounds, true);

/** The few entry points the loop needs, typed loosely: the other build's types may differ. */
interface Build {
  createApp: (config: unknown, deps: Record<string, unknown>) => { recover(): Promise<number>; shutdown(ms: number): Promise<void>; pipeline: { process(event: unknown, signals: unknown): void } };
  parseConfig: (raw: unknown, o: { env: Record<string, string>; extraChecks: (r: unknown) => unknown }, name: string) => unknown;
  loadTemplates: () => unknown;
  checkDestinations: (r: unknown, templates: unknown) => unknown;
  NO_SIGNALS: unknown;
  parseSegmentEvent: (json: unknown, type: string, facts: { now: Date }) => { ok: true; event: unknown } | { ok: false };
  openDb: (url: string) => Promise<{ close(): Promise<void> }>;
}

async function load(root: string): Promise<Build> {
  const at = (file: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(root, 'src', file)).href) as Promise<Record<string, unknown>>;
  const [app, config, templates, resolveMod, signals, segment, open] = await Promise.all(
    ['app.ts', 'config/load.ts', 'destinations/load.ts', 'destinations/resolve.ts', 'consent/signals.ts', 'ingest/segment.ts', 'store/open.ts'].map(at),
  );
  return { ...app, ...config, ...templates, ...resolveMod, ...signals, ...segment, ...open } as unknown as Build;
}

const builds: Record<'this' | 'other', Build> = {
  this: await load(resolve(fileURLToPath(new URL('..', import.meta.url)))),
  other: await load(resolve(values.other)),
};
const sink = 'http://127.0.0.1:9';
const factory = eventFactory('stages-ab', 100);

/** CPU µs per event of one round of `total` events on build `b`. */
async function run(b: Build): Promise<number> {
  const templates = b.loadTemplates();
  const config = b.parseConfig(benchConfig(sink, 'silent', ['meta', 'ga4', 'webhook']), { env: {}, extraChecks: (r) => b.checkDestinations(r, templates) }, 'bench config');
  const agent = new MockAgent();
  agent.disableNetConnect();
  agent.get(sink).intercept({ path: () => true, method: 'POST' }).reply(200, '{}').persist();
  const dir = mkdtempSync(join(tmpdir(), 'tw-stages-ab-'));
  const db = await b.openDb(`sqlite:${join(dir, 'tagwarden.db')}`);
  const app = b.createApp(config, { logger: pino({ level: 'silent' }), templates, agent, db });
  await app.recover();
  const now = new Date();
  const start = process.cpuUsage();
  for (let i = 0; i < total; i++) {
    const r = b.parseSegmentEvent(JSON.parse(factory.body(i)), 'track', { now });
    if (!r.ok) throw new Error('the bench event did not validate');
    app.pipeline.process(r.event, b.NO_SIGNALS);
    if (i % 50 === 0) await new Promise((done) => setImmediate(done));
  }
  const used = process.cpuUsage(start);
  await app.shutdown(5_000);
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  return (used.user + used.system) / total;
}

const results: Record<'this' | 'other', number[]> = { this: [], other: [] };
// A first round of each warms the JIT; then the order alternates round by round.
await run(builds.other);
await run(builds.this);
for (let r = 0; r < rounds; r++) {
  for (const k of r % 2 === 0 ? (['other', 'this'] as const) : (['this', 'other'] as const)) results[k].push(await run(builds[k]));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;
const a = median(results.this);
const b = median(results.other);
console.log(`CPU µs per event (parse, validate, pipeline with a SQLite store), ${total} events a round, median of ${rounds}:`);
console.log(`  this  ${a.toFixed(1)}   [${results.this.map((x) => x.toFixed(1)).join(', ')}]`);
console.log(`  other ${b.toFixed(1)}   [${results.other.map((x) => x.toFixed(1)).join(', ')}]`);
console.log(`  this / other: ${(a / b).toFixed(3)}`);
