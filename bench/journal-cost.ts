/**
 * The delivery journal's own cost per hit, in one process and without HTTP or delivery: the
 * journal writer (group commit to a SQLite file in a temp directory), the tracker (three
 * destinations whose results come back in batches as the bench's do: Meta 1000, the webhook 100,
 * GA4 20) and the finish, for events parsed from the bench's body one by one and garbage once
 * delivered, as in the server. A diagnostic beside bench/stages.ts, not a gate.
 *
 *   node bench/journal-cost.ts [--hits 60000] [--per-turn 32] [--journal on|off]
 *
 * `--journal off` runs the same loop without the journal (parse, and what the batches keep: a
 * message id and a JSON string per event and destination): the journal's cost is `on` minus `off`.
 * CPU time on a shared machine moves with other load; instruction counts do not, so for small
 * differences run it under callgrind at two sizes and take the difference per hit, which removes
 * the start-up:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/journal-cost.ts --hits 2000
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/journal-cost.ts --hits 6000
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RequestSignals } from '../src/consent/signals.ts';
import { encodeJournaledHit } from '../src/delivery/journal-payload.ts';
import { createJournalTracker } from '../src/delivery/journal-tracker.ts';
import { createJournalWriter } from '../src/delivery/journal-writer.ts';
import type { Event } from '../src/ingest/event.ts';
import { parseSegmentEvent } from '../src/ingest/segment.ts';
import { openDb } from '../src/store/open.ts';
import { positive } from './args.ts';
import { eventFactory } from './event.ts';

const { values } = parseArgs({
  options: { hits: { type: 'string', default: '60000' }, 'per-turn': { type: 'string', default: '32' }, journal: { type: 'string', default: 'on' } },
  strict: true,
});
const total = positive('hits', values.hits, true);
const perTurn = positive('per-turn', values['per-turn'], true);
if (values.journal !== 'on' && values.journal !== 'off') throw new Error('--journal on|off');
const journalOn = values.journal === 'on';

const dir = mkdtempSync(join(tmpdir(), 'tw-journal-cost-'));
const db = await openDb(`sqlite:${join(dir, 'journal.db')}`);
const writer = createJournalWriter({ db, owner: 'bench:1:00000000', leaseMs: 30_000, maxHits: 1e9, maxBytes: 1e12, windowMs: 0, retryAfterS: 1 });
const tracker = createJournalTracker({ finish: (ids) => writer.finish(ids), putWork: (rows) => writer.putWork(rows), settleWork: (d, ids) => writer.settleWork(d, ids) });

const factory = eventFactory('journal-cost', 100);
const signals: RequestSignals = { gpc: false, visitor: { id: 'anon-1', source: 'anonymousId' } };
const destinations = [
  { id: 'meta', batch: 1000 },
  { id: 'webhook', batch: 100 },
  { id: 'ga4', batch: 20 },
];
const destinationIds = destinations.map((d) => d.id);
const queues = new Map(destinations.map((d) => [d.id, { messageIds: [] as string[], json: [] as string[] }]));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What the pipeline does with a committed event here: hand it to every destination's batch. */
function enqueue(event: Event): void {
  for (const id of destinationIds) {
    if (journalOn) tracker.enqueued(id, event);
    const q = queues.get(id)!;
    q.messageIds.push(event.messageId);
    q.json.push(JSON.stringify(event.properties));
  }
}

/** Batches that filled are sent: their events are delivered. */
function deliverFull(all = false): void {
  for (const d of destinations) {
    const q = queues.get(d.id)!;
    while (q.messageIds.length >= (all ? 1 : d.batch)) {
      const sent = q.messageIds.splice(0, all ? q.messageIds.length : d.batch);
      q.json.splice(0, sent.length);
      if (journalOn) tracker.delivered(d.id, sent);
    }
  }
}

let answered = 0;
let committed: Event[] = [];
const started = process.cpuUsage();
for (let i = 0; i < total; i += perTurn) {
  const now = new Date();
  for (let k = 0; k < Math.min(perTurn, total - i); k++) {
    const parsed = parseSegmentEvent(JSON.parse(factory.body(i + k)), 'track', { now, ip: '203.0.113.7', userAgent: 'bench' });
    if (!parsed.ok) throw new Error('the bench event did not validate');
    const event = parsed.event;
    if (!journalOn) {
      answered++;
      committed.push(event);
      continue;
    }
    const hit = { siteId: 'bench', receivedAt: Date.parse(event.receivedAt), payload: encodeJournaledHit({ event, signals }) };
    writer.submit(
      [hit],
      (ids) => {
        tracker.begin(event, ids[0]!, destinationIds);
        answered++;
        committed.push(event);
      },
      (err) => {
        throw err;
      },
    );
  }
  await nextTurn();
  // The pipeline runs a turn after the answers (src/ingest/deferred.ts), then full batches go.
  const turn = committed;
  committed = [];
  for (const event of turn) enqueue(event);
  deliverFull();
}
await nextTurn();
for (const event of committed) enqueue(event);
deliverFull(true);
await writer.close();
const used = process.cpuUsage(started);
const left = await db.get<{ n: number | bigint }>('SELECT COUNT(*) AS n FROM journal_hits');
await db.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  `journal ${values.journal}: ${answered} hits, ${((used.user + used.system) / answered).toFixed(1)} us CPU per hit ` +
    `(user ${(used.user / answered).toFixed(1)}, system ${(used.system / answered).toFixed(1)}); hits left in the journal: ${Number(left?.n ?? 0)}`,
);
