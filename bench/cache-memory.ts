/**
 * Memory per cached visitor: the per-visitor consent caches filled with `--visitors` visitors
 * (default 100,000) against the same caches empty, in the same process, heap and RSS read after a
 * full GC (`--expose-gc`; re-run with it when missing).
 *
 *   node --expose-gc bench/cache-memory.ts [--visitors 100000]   (npm run bench -- --suite memory)
 *
 * The caches are the ones a hit's consent goes through (src/consent): the consent store's
 * per-visitor cache (`createStoreSource`: the stored record and the signal derived from it; its
 * default bound is 100,000 entries), and the upstream verify client's answer cache (`VerifyCache`).
 * Each visitor's record is what the store returns for a visitor with two site categories granted
 * (a fresh object per read, as from the database); each verify answer is a CookieBoss answer with
 * two mapped categories. Both caches are filled through their own API.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createStoreSource } from '../src/consent/store-source.ts';
import { VerifyCache } from '../src/consent/upstream/cache.ts';
import type { SubjectConsent, SubjectRef } from '../src/store/types.ts';
import { systemClock } from '../src/lib/clock.ts';
import { positive } from './args.ts';
import { machineLine, markdownTable } from './tally.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // The figures need a full collection before each reading: run again with it.
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { values } = parseArgs({ options: { visitors: { type: 'string', default: '100000' } }, strict: true });
const visitors = positive('visitors', values.visitors, true);
const CATEGORIES = ['advertising', 'analytics'];
const t0 = Date.UTC(2026, 10, 1);

function record(siteId: string, subject: SubjectRef, i: number): SubjectConsent {
  const at = t0 + i * 1000;
  return {
    siteId,
    subject,
    linked: [subject],
    version: 1 + (i % 5),
    items: {
      advertising: { item: 'advertising', status: 'granted', consentAt: at, validUntil: null, source: 'api', expired: false },
      analytics: { item: 'analytics', status: i % 3 === 0 ? 'denied' : 'granted', consentAt: at, validUntil: null, source: 'api', expired: false },
    },
    tcfString: null,
    gcm: null,
    consentType: 'explicit',
    geoCountry: 'DE',
    consentAt: at,
    updatedAt: at,
  };
}

interface Reading {
  heapUsed: number;
  rss: number;
}

function read(): Reading {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

// A fixed time a day after the consents: nothing expires while the caches are measured.
const clock = { ...systemClock, now: () => t0 + 86_400_000 };
/** Visitor i's id, a fresh string each call (as each request brings its own): the cache that keeps one pays for it. */
const idOf = (i: number): string => `anon-${i.toString(36)}-${((i * 2_654_435_761) % 2 ** 32).toString(16)}`;

// Baseline: both caches made, nothing in them.
const store = createStoreSource({ siteId: 'bench', categories: CATEGORIES, maxEntries: visitors, ttlMs: 3_600_000, clock, read: (siteId, subject) => Promise.resolve(record(siteId, subject, Number.parseInt(subject.id.split('-')[1]!, 36))) });
const verify = new VerifyCache({ maxEntries: visitors, ttlMs: 3_600_000, negativeTtlMs: 60_000, failureTtlMs: 5_000 });
const empty = read();

for (let i = 0; i < visitors; i++) await store.lookup(idOf(i));
const afterStore = read();
for (let i = 0; i < visitors; i++) {
  verify.storeAnswer(idOf(i), { found: true, categories: { advertising: 'granted', analytics: i % 3 === 0 ? 'denied' : 'granted' }, consentedAt: new Date(t0 + i * 1000).toISOString(), geoCountry: 'DE', fetchedAt: clock.now() });
}
const afterVerify = read();

// Still there: a cache that dropped entries would read as cheap.
let stillCached = 0;
let stillAnswered = 0;
for (let i = 0; i < visitors; i++) {
  if (store.cached(idOf(i)) !== undefined) stillCached++;
  if (verify.answer(idOf(i), clock.now()) !== undefined) stillAnswered++;
}

const perVisitor = (a: Reading, b: Reading, k: keyof Reading): string => ((b[k] - a[k]) / visitors).toFixed(0);
const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
console.log(machineLine());
console.log(`consent caches filled with ${visitors.toLocaleString('en')} visitors against the same caches empty (after a full GC, ${process.version}):`);
console.log('');
console.log(
  markdownTable(
    ['cache', 'entries', 'heap MiB (before -> after)', 'heap bytes per visitor', 'RSS MiB (before -> after)', 'RSS bytes per visitor'],
    [
      ['consent store cache (record + signal)', String(stillCached), `${mib(empty.heapUsed)} -> ${mib(afterStore.heapUsed)}`, perVisitor(empty, afterStore, 'heapUsed'), `${mib(empty.rss)} -> ${mib(afterStore.rss)}`, perVisitor(empty, afterStore, 'rss')],
      ['upstream verify answers', String(stillAnswered), `${mib(afterStore.heapUsed)} -> ${mib(afterVerify.heapUsed)}`, perVisitor(afterStore, afterVerify, 'heapUsed'), `${mib(afterStore.rss)} -> ${mib(afterVerify.rss)}`, perVisitor(afterStore, afterVerify, 'rss')],
      ['both', '', `${mib(empty.heapUsed)} -> ${mib(afterVerify.heapUsed)}`, perVisitor(empty, afterVerify, 'heapUsed'), `${mib(empty.rss)} -> ${mib(afterVerify.rss)}`, perVisitor(empty, afterVerify, 'rss')],
    ],
  ).join('\n'),
);
console.log('');
console.log(
  `per 100,000 cached visitors (both caches): heap ${mib(((afterVerify.heapUsed - empty.heapUsed) / visitors) * 100_000)} MiB, ` +
    `RSS ${mib(((afterVerify.rss - empty.rss) / visitors) * 100_000)} MiB (the visitor ids included: the caches keep them)`,
);
if (stillCached < visitors || stillAnswered < visitors) console.log(`WARNING: only ${stillCached} / ${stillAnswered} of ${visitors} visitors stayed cached`);
