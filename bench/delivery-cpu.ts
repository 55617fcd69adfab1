/**
 * CPU per vendor request of the delivery layer alone (batcher, request building, the outbound
 * sender of src/lib/http/send.ts over a real undici pool), for GA4, which sends one request per
 * client: `--requests` events of distinct visitors are rendered first (not measured), then handed
 * to `createDelivery` against the vendor sink (bench/servers/sink.ts, another process), and this
 * process's CPU time per delivered event is reported. A diagnostic beside bench/verify.ts (docs/performance.md), not a gate.
 *
 *   node bench/delivery-cpu.ts [--requests 20000] [--visitors 10000] [--in-flight 64]
 *
 * The figure includes the kernel's share of sending on loopback (the `writev` of each request,
 * where the sink's receive is also done), which on a real network is TLS and the NIC instead.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { positive } from './args.ts';
import { installExitHooks, startChild } from './children.ts';
import { eventFactory } from './event.ts';
import { machineLine } from './tally.ts';
import { createDelivery, createMemoryOutbox } from '../src/delivery/delivery.ts';
import type { RenderedItem } from '../src/delivery/batcher.ts';
import { createPool } from '../src/lib/http/pool.ts';
import { bindDestination } from '../src/destinations/bind.ts';
import { loadTemplates } from '../src/destinations/load.ts';
import { parseSegmentEvent } from '../src/ingest/segment.ts';

/** Events sent before the measurement, so the JIT and the pool are warm. */
const WARMUP = 4_000;
/** Events handed over per event-loop turn, and the most queued ahead of the sender. */
const PER_TURN = 200;
const MAX_AHEAD = 2_000;

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    visitors: { type: 'string', default: '10000' },
    'in-flight': { type: 'string', default: '64' },
  },
  strict: true,
});
const total = positive('requests', values.requests, true);
const visitors = positive('visitors', values.visitors, true);
const inFlight = positive('in-flight', values['in-flight'], true);

installExitHooks();
console.log(machineLine());
const sink = await startChild('sink', fileURLToPath(new URL('./servers/sink.ts', import.meta.url)), []);
const ga4 = bindDestination({
  id: 'ga4',
  template: loadTemplates().get('ga4')!,
  settings: { measurementId: 'G-BENCH', apiSecret: 'bench-secret' },
  endpoint: `http://127.0.0.1:${sink.port}/ga4`,
});
const factory = eventFactory('delivery-cpu', visitors);
const now = new Date();
const items: RenderedItem[] = [];
for (let i = 0; i < WARMUP + total; i++) {
  const parsed = parseSegmentEvent(JSON.parse(factory.body(i)), 'track', { now });
  if (!parsed.ok) throw new Error('the bench event did not validate');
  const rendered = ga4.render(parsed.event, []);
  if (!rendered.ok) throw new Error('the bench event did not render for GA4');
  items.push(rendered);
}

let delivered = 0;
let wanted = 0;
let reached: () => void = () => undefined;
const delivery = createDelivery({
  agent: createPool('vendors', { connections: inFlight }),
  outbox: createMemoryOutbox(),
  defaults: { maxInFlight: inFlight, maxQueuedEvents: 1_000_000 },
  onResult: (r) => {
    if (r.outcome !== 'delivered') return;
    delivered += r.messageIds.length;
    if (delivered >= wanted) reached();
  },
  recheck: (_destination, ids) => new Set(ids),
});

/** Hands `count` events from `from` to the delivery, PER_TURN a turn, and waits until all are delivered. */
async function deliver(from: number, count: number): Promise<void> {
  wanted = delivered + count;
  const done = new Promise<void>((resolve) => (reached = resolve));
  let i = from;
  while (i < from + count) {
    if ((delivery.stats().ga4?.queued ?? 0) < MAX_AHEAD) for (let k = 0; k < PER_TURN && i < from + count; k++) delivery.enqueue(ga4, items[i++]!);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await done;
}

await deliver(0, WARMUP);
const started = performance.now();
const cpu = process.cpuUsage();
await deliver(WARMUP, total);
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
console.log(
  `GA4 through the delivery layer: ${total} events of ${visitors} visitors (one request each), maxInFlight ${inFlight}: ` +
    `${(total / seconds).toFixed(0)} requests/s, CPU ${((used.user + used.system) / total).toFixed(1)} us per request ` +
    `(user ${(used.user / total).toFixed(1)}, system ${(used.system / total).toFixed(1)})`,
);
await delivery.flush(5_000);
await sink.stop();
