/**
 * Where a hit's CPU goes inside the process, without HTTP: the stages after the body is read,
 * timed in-process on the benchmark's event, against the one stage every JSON server pays
 * (JSON.parse of the body) as the baseline. A diagnostic beside bench/run.ts, not a gate.
 *
 *   node bench/stages.ts [--events 200000] [--stage parse|validate|evaluate|process] [--store]
 *
 * `--stage` runs that stage alone (and prints only it): under callgrind, run it at two sizes and
 * take the difference per event, which removes the start-up and holds whatever else the machine
 * does. `--store` gives the app a SQLite store in a temp directory, as the server has by default:
 * consent lookups and the re-check before each send then run (the journal does not: the hit route
 * commits to it, and no route runs here; bench/journal-cost.ts measures it).
 *
 * "sustained" runs parse → validate → pipeline (decide, render, batch, deliver to an undici
 * MockAgent) for many events in a row, yielding to the event loop every 50, so batches linger and
 * the GC sees the live heap a running server has. Short loops hide that cost: strings kept by
 * lingering batches were 3× cheaper in a 40,000-event loop than in a sustained one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { MockAgent } from 'undici';
import { createApp } from '../src/app.ts';
import { parseConfig } from '../src/config/load.ts';
import { loadTemplates } from '../src/destinations/load.ts';
import { checkDestinations } from '../src/destinations/resolve.ts';
import { NO_SIGNALS } from '../src/consent/signals.ts';
import { parseSegmentEvent } from '../src/ingest/segment.ts';
import { openDb } from '../src/store/open.ts';
import { positive } from './args.ts';
import { eventFactory } from './event.ts';
import { benchConfig } from './servers/config.ts';

const STAGES = ['parse', 'validate', 'evaluate', 'process'] as const;
type Stage = (typeof STAGES)[number];
const { values } = parseArgs({
  options: { events: { type: 'string', default: '200000' }, stage: { type: 'string' }, store: { type: 'boolean', default: false } },
  strict: true,
});
const total = positive('events', values.events, true);
const only = values.stage;
if (only !== undefined && !(STAGES as readonly string[]).includes(only)) throw new Error(`--stage ${STAGES.join('|')}`);
const sink = 'http://127.0.0.1:9';
const templates = loadTemplates();
const config = parseConfig(benchConfig(sink, 'silent', ['meta', 'ga4', 'webhook']), { env: {}, extraChecks: (r) => checkDestinations(r, templates) }, 'bench config');

function mockAgent(): MockAgent {
  const agent = new MockAgent();
  agent.disableNetConnect();
  agent.get(sink).intercept({ path: () => true, method: 'POST' }).reply(200, '{}').persist();
  return agent;
}

const factory = eventFactory('stages', 100);

/** CPU µs per event for the stages up to `last`, sustained over `total` events. */
async function run(last: Stage): Promise<number> {
  const dir = values.store ? mkdtempSync(join(tmpdir(), 'tw-stages-')) : undefined;
  const db = dir === undefined ? undefined : await openDb(`sqlite:${join(dir, 'tagwarden.db')}`);
  const app = createApp(config, { logger: pino({ level: 'silent' }), templates, agent: mockAgent(), ...(db === undefined ? {} : { db }) });
  await app.recover();
  const now = new Date();
  const start = process.cpuUsage();
  for (let i = 0; i < total; i++) {
    const json: unknown = JSON.parse(factory.body(i));
    if (last !== 'parse') {
      const r = parseSegmentEvent(json, 'track', { now });
      if (!r.ok) throw new Error('the bench event did not validate');
      if (last === 'evaluate') app.pipeline.evaluate(r.event, NO_SIGNALS);
      else if (last === 'process') app.pipeline.process(r.event, NO_SIGNALS);
    }
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const used = process.cpuUsage(start);
  await app.shutdown(5_000);
  await db?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  return (used.user + used.system) / total;
}

if (only !== undefined) {
  console.log(`${only}: ${(await run(only as Stage)).toFixed(1)} CPU µs per event over ${total} events${values.store ? ' (SQLite store)' : ''}`);
  process.exit(0);
}
const results: Record<Stage, number> = { parse: 0, validate: 0, evaluate: 0, process: 0 };
for (const stage of STAGES) results[stage] = await run(stage);
const base = results.parse;
console.log(`CPU µs per event over ${total} events (process CPU, GC included), 3 destinations:`);
console.log(`  JSON.parse (baseline)           ${base.toFixed(1)}`);
console.log(`  + Segment validation            ${results.validate.toFixed(1)}  (+${(results.validate - base).toFixed(1)})`);
console.log(`  + consent, policy, render       ${results.evaluate.toFixed(1)}  (+${(results.evaluate - results.validate).toFixed(1)})`);
console.log(`  + batch and deliver (mocked)    ${results.process.toFixed(1)}  (+${(results.process - results.evaluate).toFixed(1)})`);
console.log(`everything / JSON.parse: ${(results.process / base).toFixed(1)}x`);
