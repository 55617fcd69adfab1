/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and lists where the time went: the functions with the
 * most self time, the functions of this repository (src/) with the most inclusive time, and self
 * time per file. Locations are file:line (1-based), relative to the repository.
 *
 *   node bench/profile-summary.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));

function location(frame: CallFrame): string {
  let file = frame.url;
  if (file.startsWith('file://')) file = relative(REPO, fileURLToPath(file));
  if (file === '') return '';
  return `${file}:${frame.lineNumber + 1}`;
}

function label(frame: CallFrame): string {
  const where = location(frame);
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  return where === '' ? name : `${name}  ${where}`;
}

/** Pseudo-frames that are not work done; (program) and (garbage collector) are, and stay listed. */
const NOT_WORK = new Set(['(idle)', '(root)']);

function pct(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1).padStart(5)}%`;
}

function top(map: Map<string, number>, n: number, whole: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, us]) => `  ${pct(us, whole)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
}

/** The summary as printable lines. */
export function summarizeProfile(file: string, n = 25): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const perFile = new Map<string, number>();
  let total = 0;
  let busy = 0;
  // timeDeltas[i] is the time between sample i-1 and sample i; charge it to sample i.
  profile.samples.forEach((id, i) => {
    const us = Math.max(0, profile.timeDeltas[i] ?? 0);
    total += us;
    const node = byId.get(id);
    if (node === undefined) return;
    const frame = node.callFrame;
    self.set(label(frame), (self.get(label(frame)) ?? 0) + us);
    if (frame.functionName === '(idle)') return;
    busy += us;
    const file = location(frame).replace(/:\d+$/, '') || frame.functionName;
    perFile.set(file, (perFile.get(file) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!location(f).startsWith('src/')) continue;
      const key = label(f);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  });

  const busyLabel = `busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled (${pct(busy, total).trim()})`;
  return [
    `profile ${relative(process.cwd(), file)}: ${busyLabel}; percentages are of busy time`,
    '',
    `top ${n} by self time:`,
    ...top(new Map([...self].filter(([k]) => !NOT_WORK.has(k))), n, busy),
    '',
    `top ${n} functions of src/ by inclusive time (the function and what it calls):`,
    ...top(inclusive, n, busy),
    '',
    `top ${Math.min(n, 15)} files by self time:`,
    ...top(perFile, Math.min(n, 15), busy),
  ];
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node bench/profile-summary.ts <file.cpuprofile> [--top N]');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  const n = i > 0 ? Number(process.argv[i + 1]) : 25;
  console.log(summarizeProfile(file, Number.isFinite(n) && n > 0 ? n : 25).join('\n'));
}
