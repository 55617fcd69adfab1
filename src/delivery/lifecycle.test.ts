import { describe, expect, it } from 'vitest';
import { InternalError } from '../errors.ts';
import { createLifecycle } from './lifecycle.ts';
import { FakeClock } from '../lib/fake-clock.ts';

const T0 = Date.UTC(2026, 0, 1);

/** A stand-in for the lanes and the parker: held work is a flag the test turns off. */
function setup() {
  const clock = new FakeClock(T0);
  const events: string[] = [];
  // A drain starts asynchronously (after any drain before it); tests wait for its first step.
  const waiters: { event: string; resolve: () => void }[] = [];
  const record = (event: string): void => {
    events.push(event);
    for (const w of waiters.filter((w) => w.event === event)) w.resolve();
  };
  const began = (event: string): Promise<void> => (events.includes(event) ? Promise.resolve() : new Promise((resolve) => waiters.push({ event, resolve })));
  const world = { busy: false, idleOnParking: true, parkFails: false, parkLate: [] as number[], lateParks: 0, errors: [] as unknown[] };
  const lifecycle = createLifecycle({
    clock,
    startFlush: () => record(`startFlush:${lifecycle.mode}`),
    startParking: () => {
      record(`startParking:${lifecycle.mode}`);
      if (world.parkFails) world.errors.push(new Error('disk full'));
      if (world.idleOnParking) world.busy = false;
    },
    parkLate: (deadline) => {
      world.parkLate.push(deadline);
      if (world.lateParks === 0) return false;
      world.lateParks -= 1;
      return true;
    },
    busy: () => world.busy,
    takeParkErrors: () => world.errors.splice(0),
  });
  /** Nothing is held any more; the parts say so with changed(). */
  const idle = (): void => {
    world.busy = false;
    lifecycle.changed();
  };
  return { clock, events, world, lifecycle, idle, began };
}

describe('lifecycle: flush', () => {
  it('with nothing held, resolves at once and is open again', async () => {
    const { clock, events, world, lifecycle } = setup();
    expect(lifecycle.mode).toBe('open');
    await lifecycle.flush(1_000);
    expect(events).toEqual(['startFlush:flushing']);
    expect(world.parkLate).toEqual([T0 + 1_000]);
    expect(lifecycle.mode).toBe('open');
    expect(clock.pendingTimers).toBe(0);
  });

  it('waits until nothing is held, asking at every change for what cannot make the deadline', async () => {
    const { clock, events, world, lifecycle, idle, began } = setup();
    world.busy = true;
    const flushed = lifecycle.flush(1_000);
    await began('startFlush:flushing');
    expect(lifecycle.mode).toBe('flushing');
    lifecycle.changed();
    expect(world.parkLate).toEqual([T0 + 1_000, T0 + 1_000]);
    clock.advance(400);
    idle();
    await flushed;
    expect(events).toEqual(['startFlush:flushing']);
    expect(lifecycle.mode).toBe('open');
    expect(clock.pendingTimers).toBe(0); // the deadline timer is gone
  });

  it('a change that parked late work is not yet idle: the drain waits for the next change', async () => {
    const { world, lifecycle, began } = setup();
    world.lateParks = 1;
    const flushed = lifecycle.flush(1_000);
    await began('startFlush:flushing');
    expect(world.parkLate).toHaveLength(1);
    // Still waiting (a resolved drain would not ask again); now nothing is parked or held: idle.
    lifecycle.changed();
    expect(world.parkLate).toHaveLength(2);
    await flushed;
    lifecycle.changed();
    expect(world.parkLate).toHaveLength(2);
  });

  it('at the deadline, parks everything still held and resolves once that is done', async () => {
    const { clock, events, world, lifecycle, began } = setup();
    world.busy = true;
    world.idleOnParking = false;
    const flushed = lifecycle.flush(200);
    await began('startFlush:flushing');
    clock.advance(199);
    expect(events).toEqual(['startFlush:flushing']);
    clock.advance(1);
    expect(events).toEqual(['startFlush:flushing', 'startParking:parking']);
    expect(lifecycle.mode).toBe('parking');
    world.busy = false;
    lifecycle.changed();
    await flushed;
    expect(lifecycle.mode).toBe('open');
  });

  it('no deadline asked while parking: late parking is only for a flush', async () => {
    const { clock, world, lifecycle, began } = setup();
    world.busy = true;
    world.idleOnParking = false;
    const flushed = lifecycle.flush(0);
    await began('startFlush:flushing');
    clock.advance(0);
    world.parkLate.length = 0;
    lifecycle.changed();
    expect(world.parkLate).toEqual([]);
    world.busy = false;
    lifecycle.changed();
    await flushed;
  });

  it('rejects with InternalError when the outbox refused park calls during the drain, not for earlier ones', async () => {
    const { world, lifecycle, idle, began } = setup();
    world.errors.push(new Error('before this drain'));
    world.busy = true;
    const flushed = lifecycle.flush(1_000);
    await began('startFlush:flushing');
    world.errors.push(new Error('disk full'), new Error('disk full'));
    idle();
    const err = await flushed.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InternalError);
    expect(err).toMatchObject({ message: 'outbox refused 2 park call(s)', details: { count: 2 } });
    expect(lifecycle.mode).toBe('open');
    // A refused drain does not hold up the next one.
    await lifecycle.flush(1_000);
  });
});

describe('lifecycle: close', () => {
  it('refuses at once, parks everything, then finishes; the mode stays parking', async () => {
    const { events, lifecycle } = setup();
    const closed = lifecycle.close(() => events.push('finish'));
    expect(lifecycle.closed).toBe(true);
    await closed;
    expect(events).toEqual(['startParking:parking', 'finish']);
    expect(lifecycle.mode).toBe('parking');
  });

  it('a close during a flush starts once the flush is over (drains never interleave)', async () => {
    const { events, world, lifecycle, idle, began } = setup();
    world.busy = true;
    const flushed = lifecycle.flush(1_000);
    const closed = lifecycle.close(() => events.push('finish'));
    await began('startFlush:flushing');
    expect(lifecycle.closed).toBe(true);
    expect(events).toEqual(['startFlush:flushing']);
    idle();
    await flushed;
    await closed;
    expect(events).toEqual(['startFlush:flushing', 'startParking:parking', 'finish']);
    // Closed: a flush no longer reopens.
    expect(lifecycle.mode).toBe('parking');
  });

  it('does not finish when the outbox refused, and rejects', async () => {
    const { events, world, lifecycle } = setup();
    world.parkFails = true;
    await expect(lifecycle.close(() => events.push('finish'))).rejects.toThrow(InternalError);
    expect(events).toEqual(['startParking:parking']);
  });
});
