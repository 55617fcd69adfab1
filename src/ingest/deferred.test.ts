import { describe, expect, it } from 'vitest';
import type { Event } from './event.ts';
import { createDeferredProcessing } from './deferred.ts';

const ev = (id: string) => ({ messageId: id }) as Event;

describe('deferred processing', () => {
  it('processes after the current turn, in order, once', async () => {
    const seen: string[] = [];
    const d = createDeferredProcessing<Event>((e) => seen.push(e.messageId), () => undefined);
    d.push(ev('a'));
    d.push(ev('b'));
    expect(seen).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['a', 'b']);
    d.drain();
    expect(seen).toEqual(['a', 'b']);
  });

  it('drain processes at once; the scheduled turn then has nothing to do', async () => {
    const seen: string[] = [];
    const d = createDeferredProcessing<Event>((e) => seen.push(e.messageId), () => undefined);
    d.push(ev('a'));
    d.drain();
    expect(seen).toEqual(['a']);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['a']);
  });

  it('an error in one event is reported and the others still run', () => {
    const seen: string[] = [];
    const errors: string[] = [];
    const d = createDeferredProcessing<Event>(
      (e) => {
        if (e.messageId === 'bad') throw new Error('boom');
        seen.push(e.messageId);
      },
      (_err, e) => errors.push(e.messageId),
    );
    d.push(ev('a'));
    d.push(ev('bad'));
    d.push(ev('c'));
    d.drain();
    expect(seen).toEqual(['a', 'c']);
    expect(errors).toEqual(['bad']);
  });
});
