/**
 * CPU time of the bench's processes, from /proc (Linux; every function returns undefined
 * elsewhere). A target may be a process tree (a cluster primary and its workers): its CPU is the
 * sum over the pid and every descendant, found through the parent pid field of /proc/<pid>/stat.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the clock ticks of /proc/<pid>/stat and /proc/stat; 100 on every Linux the bench runs on. */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, in ticks. */
  ticks: number;
  /** utime alone (the process's own code; stime is the kernel's work for it: syscalls, loopback TCP), in ticks. */
  userTicks: number;
}

/** A process's CPU seconds so far: in all, and in user mode. */
export interface CpuTimes {
  total: number;
  user: number;
}

/** Parses the fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
export function parseProcStat(stat: string): ProcStat | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // proc(5): ppid is field 4, utime 14, stime 15; counted here from the state field (3).
  const ppid = Number(fields[1]);
  const userTicks = Number(fields[11]);
  const ticks = userTicks + Number(fields[12]);
  return Number.isFinite(ppid) && Number.isFinite(ticks) ? { ppid, ticks, userTicks } : undefined;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in seconds; undefined when it cannot be read. */
export function processCpuSeconds(pid: number): number | undefined {
  const s = readStat(pid);
  return s === undefined ? undefined : s.ticks / TICKS_PER_SECOND;
}

/**
 * The pid and its descendants, each with its CPU seconds so far (a snapshot). Undefined when the
 * pid itself cannot be read. A descendant that exits between two snapshots takes its CPU with it
 * (its parent's cutime is not counted): the bench's workers live as long as the target.
 */
export function processTreeCpu(pid: number): Map<number, CpuTimes> | undefined {
  const root = readStat(pid);
  if (root === undefined) return undefined;
  const times = (s: ProcStat): CpuTimes => ({ total: s.ticks / TICKS_PER_SECOND, user: s.userTicks / TICKS_PER_SECOND });
  const children = new Map<number, { pid: number; stat: ProcStat }[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return new Map([[pid, times(root)]]);
  }
  for (const name of entries) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const p = Number(name);
    const s = readStat(p);
    if (s === undefined) continue;
    const list = children.get(s.ppid) ?? [];
    list.push({ pid: p, stat: s });
    children.set(s.ppid, list);
  }
  const out = new Map<number, CpuTimes>([[pid, times(root)]]);
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      if (out.has(c.pid)) continue;
      out.set(c.pid, times(c.stat));
      queue.push(c.pid);
    }
  }
  return out;
}

/**
 * CPU seconds the tree spent between two snapshots (in all, or in user mode): every process of
 * `after`, less what it had in `before` (a process born in between counts whole).
 */
export function treeCpuDelta(before: ReadonlyMap<number, CpuTimes>, after: ReadonlyMap<number, CpuTimes>, part: keyof CpuTimes = 'total'): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s[part] - (before.get(pid)?.[part] ?? 0);
  return sum;
}

/** Busy CPU ticks of the whole machine, from /proc/stat; undefined elsewhere. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return (t[0]! + t[1]! + t[2]! + t[5]! + t[6]! + t[7]!) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
