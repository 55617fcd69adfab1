import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * No test waits on the wall clock for longer than 50 ms: time is driven (FakeClock, vi fake
 * timers) or an event is awaited. Only the end-to-end crash tests, which kill a real process
 * mid-stream, may let real time pass. This scan keeps it so: a literal wait over the limit in a
 * test file fails here with its file and line.
 */
const LIMIT_MS = 50;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const isCrashTest = (file: string): boolean => /crash\.test\.ts$/.test(basename(file));

/** `setTimeout(fn, 1300)`, `setTimeout(1300)` (timers/promises), `sleep(300)`, `delay(2_000)`. */
const CALL = /\b(setTimeout|sleep|delay)\s*\(/g;

function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

/** The literal waits over the limit in one file's text, as `line: call`. */
function longSleeps(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(CALL)) {
    // A timer on an injected clock (`clock.setTimeout(fn, 5_000)`) is driven, not waited for.
    if (text[m.index - 1] === '.' && !text.slice(0, m.index).endsWith('globalThis.')) continue;
    const open = m.index + m[0].length - 1;
    const close = closingParen(text, open);
    if (close < 0) continue;
    const args = text.slice(open + 1, close);
    // The delay is the last argument of setTimeout, the only one of sleep/delay.
    const literal = (m[1] === 'setTimeout' ? /(?:^|,)\s*([0-9][0-9_]*)\s*,?\s*$/ : /^\s*([0-9][0-9_]*)\s*$/).exec(args);
    if (literal === null) continue;
    const ms = Number(literal[1]!.replaceAll('_', ''));
    if (ms > LIMIT_MS) found.push(`${text.slice(0, m.index).split('\n').length}: ${text.slice(m.index, close + 1).replace(/\s+/g, ' ')}`);
  }
  return found;
}

function testFiles(): string[] {
  const under = (dir: string, keep: (path: string) => boolean): string[] =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).map((p) => join(ROOT, dir, p)).filter(keep);
  return [...under('test', (p) => p.endsWith('.ts')), ...under('src', (p) => p.endsWith('.test.ts')), ...under('templates', (p) => p.endsWith('.test.ts'))].filter((p) => p !== SELF && !isCrashTest(p));
}

describe('no sleeps over 50 ms in tests', () => {
  it('finds the usual shapes of a wait, and only literal ones over the limit', () => {
    expect(longSleeps('await new Promise((r) => setTimeout(r, 1300));')).toEqual(['1: setTimeout(r, 1300)']);
    expect(longSleeps('x;\nsetTimeout(() => { done(f(1)); }, 2_000);')).toEqual(['2: setTimeout(() => { done(f(1)); }, 2_000)']);
    expect(longSleeps('await sleep(300); await delay(51); await setTimeout(100);')).toHaveLength(3);
    expect(longSleeps('globalThis.setTimeout(r, 60)')).toHaveLength(1);
    expect(longSleeps('setTimeout(r, 50); sleep(20); clock.setTimeout(fn, 5_000); setTimeout(r, deadline - now); retry.wait(2000)')).toEqual([]);
  });

  it('test files (crash tests aside) wait on events or drive a clock, never the wall clock beyond 50 ms', () => {
    const files = testFiles();
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.flatMap((f) => longSleeps(readFileSync(f, 'utf8')).map((hit) => `${relative(ROOT, f)}:${hit}`));
    expect(offenders, 'use FakeClock (src/lib/fake-clock.ts), vi fake timers, or await the event').toEqual([]);
  });
});
