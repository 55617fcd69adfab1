/**
 * Compares two V8 heap snapshots (node --heapsnapshot-signal, as `npm run soak -- --heap-snapshots
 * <dir>` takes them) and lists what grew between them: live objects grouped by their type and
 * constructor (or string kind), with the count and the self size of each group in both, largest
 * growth first. A leak shows as a group that grows with time; a cache filling up shows as its
 * entries' groups.
 *
 *   node bench/heap-diff.ts <earlier.heapsnapshot> <later.heapsnapshot> [--top 30]
 *
 * The file is read as bytes and only its `nodes` and `strings` are decoded (a snapshot of a few
 * hundred MiB is longer than the longest string V8 can make, so JSON.parse of the whole is not an option).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { markdownTable } from './tally.ts';

export interface Group {
  count: number;
  bytes: number;
}

/** The byte offset just past `key` (e.g. `"nodes":[`) at or after `from`; throws when absent. */
function after(buf: Buffer, key: string, from = 0): number {
  const at = buf.indexOf(key, from, 'latin1');
  if (at === -1) throw new Error(`not a V8 heap snapshot: no ${key}`);
  return at + key.length;
}

/** The integers of a JSON array of integers starting at `start` (just past its `[`), up to its `]`. */
function intsUntilBracket(buf: Buffer, start: number): { values: number[]; end: number } {
  const values: number[] = [];
  let n = 0;
  let inNumber = false;
  let i = start;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      inNumber = true;
    } else {
      if (inNumber) values.push(n);
      n = 0;
      inNumber = false;
      if (c === 93) break; // ]
    }
  }
  return { values, end: i };
}

/** Groups of live objects by `type:name`, summed: their count and self size. */
export function groupSnapshot(buf: Buffer): Map<string, Group> {
  const nodesAt = after(buf, '"nodes":[');
  const head = buf.toString('utf8', 0, buf.lastIndexOf(',', nodesAt)) + '}';
  const meta = (JSON.parse(head) as { snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } } }).snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const { values: nodes, end } = intsUntilBracket(buf, nodesAt);
  const stringsAt = after(buf, '"strings":[', end) - 1;
  const close = buf.lastIndexOf(']');
  const strings = JSON.parse(buf.toString('utf8', stringsAt, close + 1)) as string[];
  const groups = new Map<string, Group>();
  for (let i = 0; i + width <= nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!] ?? '?';
    // Strings are grouped by kind: their text is data, not a kind of object.
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' ? '' : (strings[nodes[i + nameAt]!] ?? '?').slice(0, 80);
    const key = name === '' ? `(${type})` : `${type}:${name}`;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count += 1;
    g.bytes += nodes[i + sizeAt]!;
    groups.set(key, g);
  }
  return groups;
}

/** Rows of what grew most (in bytes) from `a` to `b`. */
export function growth(a: ReadonlyMap<string, Group>, b: ReadonlyMap<string, Group>, top: number): string[][] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows = [...keys].map((k) => {
    const x = a.get(k) ?? { count: 0, bytes: 0 };
    const y = b.get(k) ?? { count: 0, bytes: 0 };
    return { k, x, y, d: y.bytes - x.bytes };
  });
  rows.sort((p, q) => q.d - p.d);
  const mib = (n: number): string => (n / 1048576).toFixed(2);
  return rows.slice(0, top).map((r) => [r.k, String(r.x.count), String(r.y.count), String(r.y.count - r.x.count), mib(r.x.bytes), mib(r.y.bytes), mib(r.d)]);
}

function total(g: ReadonlyMap<string, Group>): Group {
  let count = 0;
  let bytes = 0;
  for (const v of g.values()) {
    count += v.count;
    bytes += v.bytes;
  }
  return { count, bytes };
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '30' } }, allowPositionals: true });
  if (positionals.length !== 2) throw new Error('usage: node bench/heap-diff.ts <earlier.heapsnapshot> <later.heapsnapshot> [--top 30]');
  const [a, b] = positionals.map((f) => groupSnapshot(readFileSync(f)));
  const [ta, tb] = [total(a!), total(b!)];
  console.log(`live objects: ${ta.count} -> ${tb.count}; self size ${(ta.bytes / 1048576).toFixed(1)} -> ${(tb.bytes / 1048576).toFixed(1)} MiB`);
  console.log(markdownTable(['type:constructor', 'count before', 'count after', 'count +', 'MiB before', 'MiB after', 'MiB +'], growth(a!, b!, Number(values.top))).join('\n'));
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
