import { describe, expect, it } from 'vitest';
import type { WorkRow } from '../store/journal.ts';
import { createTickSink } from './journal-tick-sink.ts';

const row = (hitId: number, destinationId: string, state: WorkRow['state'], notBefore: number): WorkRow => ({
  hitId,
  destinationId,
  state,
  notBefore,
  attempts: 0,
  firstAttemptAt: null,
  reason: null,
  code: null,
  lastStatus: null,
  excerpt: null,
  updatedAt: 0,
});
/** The end of the current tick: the microtasks queued so far have run. */
const tick = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve));

describe('journal tick sink', () => {
  function setup() {
    const log: string[] = [];
    const sink = createTickSink({
      putWork: (rows) => log.push(`work ${rows.map((w) => `${w.hitId}/${w.destinationId}/${w.state}@${w.notBefore}`).join(' ')}`),
      settleWork: (d, ids) => log.push(`settle ${d} ${ids.join(',')}`),
      finish: (ids) => log.push(`finish ${ids.join(',')}`),
    });
    return { sink, log };
  }

  it("merges one tick's writes: every row in one write (each row's last version), one settle per destination, one finish; rows first", async () => {
    const { sink, log } = setup();
    sink.putWork([row(1, 'ads', 'held', 30_000), row(1, 'stats', 'waiting', 0)]);
    sink.settleWork('stats', [1]);
    sink.finish([7]);
    sink.putWork([row(2, 'ads', 'held', 31_000)]);
    sink.settleWork('stats', [2]);
    sink.settleWork('ads', [9]);
    sink.finish([8]);
    sink.putWork([row(1, 'ads', 'waiting', 5_000)]);
    expect(log).toEqual([]);
    await tick();
    expect(log).toEqual(['work 1/ads/waiting@5000 1/stats/waiting@0 2/ads/held@31000', 'settle stats 1,2', 'settle ads 9', 'finish 7,8']);
    // The next tick is a write of its own, after the first.
    sink.finish([3]);
    await tick();
    expect(log.at(-1)).toBe('finish 3');
    expect(log).toHaveLength(5);
  });

  it('flush hands over at once (close), and the tick then finds nothing', async () => {
    const { sink, log } = setup();
    sink.putWork([row(1, 'ads', 'dead', 1)]);
    sink.finish([1]);
    sink.flush();
    expect(log).toEqual(['work 1/ads/dead@1', 'finish 1']);
    await tick();
    expect(log).toHaveLength(2);
  });
});
