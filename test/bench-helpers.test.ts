// The bench's pure helpers (bench/proc-cpu.ts, bench/issue-ratios.ts, bench/ingest.ts): no load, no timing.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { parseProcStat, processTreeCpu, treeCpuDelta } from '../bench/proc-cpu.ts';
import { issueRatioLines, predictedHitsPerSec } from '../bench/issue-ratios.ts';
import { deliveryCheck, destinationsOf, type TargetName, type TargetSummary } from '../bench/ingest.ts';
import { markdownTable } from '../bench/tally.ts';
import { groupSnapshot, growth } from '../bench/heap-diff.ts';

describe('proc-cpu', () => {
  it('reads ppid, utime + stime and utime after a command name holding spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = '4242 (node (worker) 1) S 4000 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 11 0';
    expect(parseProcStat(stat)).toEqual({ ppid: 4000, ticks: 300, userTicks: 250 });
  });

  it('sums a tree, in all or in user mode: a process born between two snapshots counts whole, the others their difference', () => {
    const before = new Map([
      [1, { total: 1.0, user: 0.5 }],
      [2, { total: 0.5, user: 0.25 }],
    ]);
    const after = new Map([
      [1, { total: 1.5, user: 0.75 }],
      [2, { total: 0.75, user: 0.5 }],
      [3, { total: 0.25, user: 0.125 }],
    ]);
    expect(treeCpuDelta(before, after)).toBeCloseTo(1.0);
    expect(treeCpuDelta(before, after, 'user')).toBeCloseTo(0.625);
  });

  it.runIf(process.platform === 'linux')('finds a child process under its parent', async () => {
    // Alive until killed below: it waits on its stdin, which stays open.
    const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await once(child, 'spawn');
      const tree = processTreeCpu(process.pid);
      expect(tree?.has(process.pid)).toBe(true);
      expect(tree?.has(child.pid!)).toBe(true);
      expect(processTreeCpu(child.pid!)?.has(process.pid)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('deliveryCheck', () => {
  it('counts acknowledged events a destination never received, and no more', () => {
    const sink = { '/webhook': { requests: 3, events: 250, bytes: 1, largestBatch: 100, unparsed: 0, maxInFlight: 1, failed: 0, failedEvents: 0 } };
    expect(deliveryCheck(['webhook'], sink, 240).missing).toBe(0);
    expect(deliveryCheck(['webhook', 'meta'], sink, 260)).toEqual({ acknowledged: 260, received: { webhook: 250, meta: 0 }, missing: 270 });
  });

  it('gives each target its own destinations', () => {
    const o = { destinations: ['meta', 'ga4', 'webhook'] };
    expect(destinationsOf('forward', o)).toEqual(['webhook']);
    expect(destinationsOf('ingest', o)).toEqual([]);
    expect(destinationsOf('tagwarden', o)).toEqual(['meta', 'ga4', 'webhook']);
    expect(destinationsOf('express', o)).toEqual([]);
  });
});

describe('issue ratios', () => {
  const summary = (target: TargetName, hitsPerSec: number, cpuUsPerHit: number): TargetSummary => ({
    target,
    hitsPerSec,
    p50Ms: 1,
    p99Ms: 2,
    cpuUsPerHit,
    userUsPerHit: cpuUsPerHit / 2,
    generatorUsPerHit: 40,
    sinkUsPerHit: 10,
    non2xx: 0,
    errors: 0,
  });

  it('is CPU-bound by one worker until the cores run out', () => {
    // t = 100 us: one worker serves 10,000/s; 2 cores shared with 50 us of generator and sink: 13,333/s.
    expect(predictedHitsPerSec(1, 2, 100, 40, 10)).toBeCloseTo(10_000);
    expect(predictedHitsPerSec(2, 2, 100, 40, 10)).toBeCloseTo(13_333.3, 0);
    expect(predictedHitsPerSec(2, 8, 100, 40, 10)).toBeCloseTo(20_000);
  });

  it('prints each ratio against its baseline with its verdict, and says what did not run', () => {
    const lines = issueRatioLines({
      summaries: [summary('tagwarden', 8000, 70), summary('express', 20_000, 50), summary('ingest', 26_000, 30), summary('forward', 9000, 90), summary('naiveproxy', 2000, 300)],
      forwardMissing: 0,
      skipped: [{ target: 'workers2', reason: 'no server.workers' }],
      cores: 2,
      fixedRate: false,
    }).join('\n');
    expect(lines).toMatch(/tagwarden \(3 destinations, journal\) \/ express, CPU per hit +\| +\*\*1\.40x\*\* \(70 \/ 50 us\) \| +<= 1\.6 \| +HOLDS/);
    expect(lines).toMatch(/tagwarden \(3 destinations, journal\) \/ express, user CPU per hit +\| +\*\*1\.40x\*\* \(35 \/ 25 us\) \| +\| +\|/);
    expect(lines).toMatch(/ingest alone \(no destinations\) \/ express, hits\/s +\| +\*\*1\.30x\*\*.*HOLDS/);
    expect(lines).toMatch(/forward \(webhook\) \/ naive proxy, hits\/s +\| +\*\*4\.50x\*\*.*HOLDS/);
    expect(lines).toMatch(/journal on \/ off \(no store\), hits\/s +\| +n\/a \(needs tagwarden and nojournal\)/);
    expect(lines).toMatch(/workers 2 \/ 1, hits\/s +\| +skipped \(workers2\)/);
    expect(lines).toContain('skipped workers2: no server.workers');
    expect(lines).toMatch(/acknowledged hits the sink never received +\| +0 \| +0 \| +HOLDS/);
  });
});

it('markdownTable pads cells and right-aligns every column but the first', () => {
  expect(markdownTable(['a', 'bb'], [['xyz', '1']])).toEqual(['| a   | bb |', '|:----|---:|', '| xyz |  1 |']);
});

describe('heap-diff', () => {
  // A minimal snapshot in V8's layout: nodes are flat [type, name, id, self_size] tuples over `strings`.
  const snapshot = (nodes: number[]): Buffer =>
    Buffer.from(
      JSON.stringify({ snapshot: { meta: { node_fields: ['type', 'name', 'id', 'self_size'], node_types: [['hidden', 'object', 'string']] }, node_count: nodes.length / 4 }, nodes, edges: [], strings: ['', 'Leak', 'Map', 'some text'] }),
    );

  it('groups live objects by type and constructor, strings by kind, and ranks what grew', () => {
    const a = groupSnapshot(snapshot([1, 1, 1, 40, 1, 2, 3, 100, 2, 3, 5, 16]));
    const b = groupSnapshot(snapshot([1, 1, 1, 40, 1, 1, 7, 40, 1, 1, 9, 40, 1, 2, 3, 100, 2, 3, 5, 16, 2, 3, 11, 32]));
    expect(a.get('object:Leak')).toEqual({ count: 1, bytes: 40 });
    expect(b.get('(string)')).toEqual({ count: 2, bytes: 48 });
    const rows = growth(a, b, 2);
    expect(rows.map((r) => [r[0], r[3]])).toEqual([
      ['object:Leak', '2'],
      ['(string)', '1'],
    ]);
  });
});
