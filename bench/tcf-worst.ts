/**
 * TCF worst case: what the costliest TC string `createTcfReader` still accepts within its bounds
 * (DEFAULT_TCF_OPTIONS: `maxLength` 2,048 characters, `maxExpandedIds` 10,000 ids; src/consent/tcf.ts
 * and tcf-guard.ts) costs to decode, against a typical CMP string, in the same process and run.
 *
 *   node bench/tcf-worst.ts [--seconds 0.5]   (npm run bench -- --suite tcf)
 *
 * Each candidate is read uncached: a fresh reader (cache of one entry) per decode, the cost of
 * making that reader and refusing an absent input measured alone and subtracted. Every "worst"
 * candidate is checked to be accepted (a refused string is cheap and would say nothing); the
 * costliest of them is the worst case, and its ratio to the typical string is printed. The string
 * one id over the bound is shown too, refused by the pre-decode scan.
 */
import { parseArgs } from 'node:util';
import { createTcfReader, DEFAULT_TCF_OPTIONS, type TcfResult } from '../src/consent/tcf.ts';
import { scanTcString } from '../src/consent/tcf-guard.ts';
import { coreBits, disclosedSegment, encodeWithLibrary, type RangeEntry, type RawRestriction } from '../test/fixtures/tcf/build.ts';
import { positive } from './args.ts';
import { machineLine, markdownTable } from './tally.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0.5' } }, strict: true });
const seconds = positive('seconds', values.seconds, false);
const MAX_IDS = DEFAULT_TCF_OPTIONS.maxExpandedIds;
const MAX_LENGTH = DEFAULT_TCF_OPTIONS.maxLength;
const now = new Date();
const lastUpdatedDs = Math.round(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) / 100);
const PURPOSES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/** Deterministic subset of 1..n (about `share` of it), so every run builds the same strings. */
function subset(n: number, share: number, seed: number): number[] {
  const out: number[] = [];
  let x = seed;
  for (let id = 1; id <= n; id++) {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    if (x / 2 ** 31 < share) out.push(id);
  }
  return out;
}

/** Splits `ids` ids into `entries` contiguous ranges of vendor ids, starting at 1. */
function ranges(ids: number, entries: number): RangeEntry[] {
  const out: RangeEntry[] = [];
  const each = Math.floor(ids / entries);
  let start = 1;
  for (let i = 0; i < entries; i++) {
    const n = i === entries - 1 ? ids - each * (entries - 1) : each;
    out.push(n === 1 ? [start] : [start, start + n - 1]);
    start += n;
  }
  return out;
}

const core = (c: Parameters<typeof coreBits>[0]): string => coreBits({ lastUpdatedDs, purposeConsents: PURPOSES, purposeLIs: [2, 7, 8, 9, 10], ...c }).toBase64Url();

interface Candidate {
  name: string;
  tc: string;
  /** true: one of the worst-case candidates, must be accepted; false: the typical string; 'refused': expected refused. */
  kind: 'typical' | 'worst' | 'refused';
}

// A TCF 2.3 string as a CMP writes it for a site showing ~800 GVL vendors: consent for about 60%,
// legitimate interest for about 30%, every vendor disclosed (bit fields or ranges, whichever the
// encoder finds shorter).
const typical = encodeWithLibrary({
  policyVersion: 5,
  gvlVendors: 800,
  lastUpdated: new Date(lastUpdatedDs * 100),
  purposeConsents: PURPOSES,
  purposeLIs: [2, 7, 8, 9, 10],
  vendorConsents: subset(800, 0.6, 7),
  vendorLIs: subset(800, 0.3, 11),
  disclosed: Array.from({ length: 800 }, (_, i) => i + 1),
});

// Publisher restrictions over 24 purposes x 2 types, the 10,000 ids spread over them.
const restrictionsOf = (ids: number, count: number, entriesEach: number): RawRestriction[] => {
  const each = Math.floor(ids / count);
  return Array.from({ length: count }, (_, i) => ({ purposeId: (i % 24) + 1, type: 1 + (Math.floor(i / 24) % 2), ranges: ranges(i === count - 1 ? ids - each * (count - 1) : each, entriesEach) }));
};

// Single-id entries fill the length bound: 17 bits each. Spread over the id space, they cost more
// than their count: the decoder's vectors and the summary's ranges walk the span, not the ids.
const singleEntries = Math.floor((MAX_LENGTH * 6 - 300) / 17);
const spreadRestrictions = Math.floor((MAX_LENGTH * 6 - 330) / 17);
const spreadEach = Math.floor((MAX_LENGTH * 6 - 330) / 34);
/** `n` single-id entries spread evenly over 1..65535. */
const spread = (n: number): RangeEntry[] => Array.from({ length: n }, (_, i) => [Math.floor((i * 65_534) / (n - 1)) + 1] as const);

const candidates: Candidate[] = [
  { name: `typical TCF 2.3 string (800 vendors, ${typical.length} chars)`, tc: typical, kind: 'typical' },
  { name: `vendor consents: one range 1..${MAX_IDS}`, tc: core({ vendorConsents: { maxVendorId: MAX_IDS, ranges: [[1, MAX_IDS]] } }), kind: 'worst' },
  {
    name: `vendor consents: a bit field of ${MAX_IDS} ids (every 2nd set)`,
    tc: core({ vendorConsents: { maxVendorId: MAX_IDS, bitfield: Array.from({ length: MAX_IDS / 2 }, (_, i) => 2 * i + 1) } }),
    kind: 'worst',
  },
  {
    name: `vendor consents: ${singleEntries} single-id entries (the length bound)`,
    tc: core({ vendorConsents: { maxVendorId: 65_535, ranges: Array.from({ length: singleEntries }, (_, i) => [i * 90 + 1] as const) } }),
    kind: 'worst',
  },
  {
    name: `publisher restrictions: 48 entries, ${MAX_IDS} ids`,
    tc: core({ restrictions: restrictionsOf(MAX_IDS, 48, 1) }),
    kind: 'worst',
  },
  {
    name: `publisher restrictions: 48 entries x 3 ranges, ${MAX_IDS} ids`,
    tc: core({ restrictions: restrictionsOf(MAX_IDS, 48, 3) }),
    kind: 'worst',
  },
  {
    name: `publisher restrictions: ${spreadRestrictions} single ids spread over 1..65535`,
    tc: core({ restrictions: [{ purposeId: 2, type: 1, ranges: spread(spreadRestrictions) }] }),
    kind: 'worst',
  },
  {
    name: `consents + LI: ${spreadEach} single ids each, spread over 1..65535`,
    tc: core({ vendorConsents: { maxVendorId: 65_535, ranges: spread(spreadEach) }, vendorLIs: { maxVendorId: 65_535, ranges: spread(spreadEach) } }),
    kind: 'worst',
  },
  {
    name: `consents + LI + restrictions + disclosed, ${MAX_IDS} ids in all`,
    tc: `${core({ vendorConsents: { maxVendorId: 2500, ranges: ranges(2500, 40) }, vendorLIs: { maxVendorId: 2500, ranges: ranges(2500, 40) }, restrictions: restrictionsOf(2500, 24, 4), policyVersion: 5 })}.${disclosedSegment({ maxVendorId: 2500, ranges: ranges(2500, 40) })}`,
    kind: 'worst',
  },
  { name: `one id over the bound: range 1..${MAX_IDS + 1}`, tc: core({ vendorConsents: { maxVendorId: MAX_IDS + 1, ranges: [[1, MAX_IDS + 1]] } }), kind: 'refused' },
];

const options = { ...DEFAULT_TCF_OPTIONS, cacheEntries: 1 };

/** Median µs per call of `fn` over batches filling `seconds`, after a warm-up. */
function microsPerCall(fn: () => void): number {
  for (let i = 0; i < 20; i++) fn();
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) fn();
    samples.push(((performance.now() - t0) * 1000) / 10);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

let sinkResult: TcfResult | undefined;
const overhead = microsPerCall(() => {
  sinkResult = createTcfReader(options).read(undefined, now);
});

const rows: { c: Candidate; us: number; cachedUs: number; result: TcfResult; ids: number | string }[] = [];
for (const c of candidates) {
  const result = createTcfReader(options).read(c.tc, now);
  const us = Math.max(0, microsPerCall(() => {
    sinkResult = createTcfReader(options).read(c.tc, now);
  }) - overhead);
  const warm = createTcfReader(options);
  const cachedUs = microsPerCall(() => {
    sinkResult = warm.read(c.tc, now);
  });
  const scan = scanTcString(c.tc, MAX_IDS);
  rows.push({ c, us, cachedUs, result, ids: scan.ok ? scan.expandedIds : scan.why });
}
void sinkResult;

console.log(machineLine());
console.log(`TCF decode, uncached (a fresh reader per decode; ${overhead.toFixed(1)} us of reader set-up subtracted), bounds: maxLength ${MAX_LENGTH}, maxExpandedIds ${MAX_IDS}:`);
console.log('');
const typicalRow = rows.find((r) => r.c.kind === 'typical')!;
const accepted = rows.filter((r) => r.c.kind === 'worst' && r.result.ok);
const worst = accepted.reduce((a, b) => (b.us > a.us ? b : a), accepted[0]!);
console.log(
  markdownTable(
    ['string', 'chars', 'ids expanded', 'result', 'us per decode', 'x typical', 'us cached'],
    rows.map((r) => [
      r.c.name + (r === worst ? ' **(worst)**' : ''),
      String(r.c.tc.length),
      String(r.ids),
      r.result.ok ? 'accepted' : r.result.reason,
      r.us.toFixed(1),
      (r.us / typicalRow.us).toFixed(1),
      r.cachedUs.toFixed(2),
    ]),
  ).join('\n'),
);
console.log('');
for (const r of rows) {
  if (r.c.kind === 'worst' && !r.result.ok) console.log(`WARNING: "${r.c.name}" was refused (${r.result.reason}): it is not a worst case within the bounds`);
  if (r.c.kind === 'refused' && r.result.ok) console.log(`WARNING: "${r.c.name}" was accepted: the id bound did not hold`);
}
if (!typicalRow.result.ok) console.log(`WARNING: the typical string was refused (${typicalRow.result.reason})`);
console.log(`worst accepted / typical: **${(worst.us / typicalRow.us).toFixed(1)}x** (${worst.us.toFixed(0)} us against ${typicalRow.us.toFixed(0)} us per decode; a decoded string is cached, so a visitor pays it once per cache lifetime)`);
