import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createRateLimitedLog } from './rate-limited-log.ts';
import { systemClock } from '../lib/clock.ts';

function setup(maxKeys?: number) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  let t = 1_000_000;
  const log = createRateLimitedLog({ log: pino({ level: 'info' }, sink), maxPerInterval: 2, intervalMs: 60_000, clock: { ...systemClock, now: () => t }, ...(maxKeys === undefined ? {} : { maxKeys }) });
  // pino writes to a plain Writable synchronously, and this one records each line as it comes.
  const flushed = () => lines;
  return { log, advance: (ms: number) => (t += ms), flushed };
}

describe('createRateLimitedLog', () => {
  it('logs at most maxPerInterval lines per key and interval, and reports the suppressed count on the next line', () => {
    const { log, advance, flushed } = setup();
    for (let i = 0; i < 5; i++) log('warn', 'segment:userId', { n: i }, 'event refused');
    log('warn', 'segment:event', { n: 9 }, 'event refused');
    advance(59_999);
    log('warn', 'segment:userId', { n: 5 }, 'event refused');
    advance(1);
    log('warn', 'segment:userId', { n: 6 }, 'event refused');
    log('warn', 'segment:userId', { n: 7 }, 'event refused');
    const lines = flushed();
    expect(lines.map((l) => [l.n, l.suppressed])).toEqual([
      [0, undefined],
      [1, undefined],
      [9, undefined],
      [6, 4],
      [7, undefined],
    ]);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'event refused' });
  });

  it('logs at the level asked', () => {
    const { log, flushed } = setup();
    log('info', 'drop:meta:consent_denied:advertising', { destination: 'meta' }, 'policy drop');
    expect((flushed())[0]).toMatchObject({ level: 30, destination: 'meta' });
  });

  it('bounds the keys it tracks: past maxKeys, new keys share one budget until old ones expire', () => {
    const { log, advance, flushed } = setup(3);
    for (let i = 0; i < 10; i++) log('warn', `k${i}`, { i }, 'x');
    // k0..k2 tracked; k3..k9 share the overflow key's two lines.
    expect((flushed()).map((l) => l.i)).toEqual([0, 1, 2, 3, 4]);
    advance(60_000);
    log('warn', 'k-new', { i: 'new' }, 'x');
    expect((flushed()).at(-1)).toMatchObject({ i: 'new' });
  });
});
