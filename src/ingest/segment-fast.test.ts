import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventFactory } from '../../bench/event.ts';
import { EVENT_TYPES } from './event.ts';
import { fastValid, LIMITS } from './segment-fast.ts';
import { parseWith } from './segment.ts';

const facts = { ip: '203.0.113.9', userAgent: 'UA/1', now: new Date('2026-03-01T12:00:00.000Z') };

/** Values near every bound and every type the schema distinguishes. */
const edgy = fc.oneof(
  fc.constantFrom(undefined, null, '', 'x', 0, 42, 1.5, Number.MAX_SAFE_INTEGER, true, [], {}, ['a'], { a: 1 }),
  fc.constantFrom('2026-03-01T11:00:00.000Z', '2026-03-01', 'not a date', '2026-13-45T99:00:00Z'),
  fc.constantFrom(...Object.values(LIMITS)).chain((n) => fc.constantFrom('a'.repeat(n), 'a'.repeat(n + 1), 'a'.repeat(Math.max(0, n - 1)))),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const str = (max: number): fc.Arbitrary<string> => fc.oneof(fc.string({ maxLength: 12 }), fc.constant('a'.repeat(max)));
const nonEmpty = (max: number): fc.Arbitrary<string> => fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constant('a'.repeat(max)));
const date = fc.constantFrom('2026-03-01T11:00:00.000Z', '2026-03-01', 'Sun, 01 Mar 2026 11:00:00 GMT');
const rec = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });

/**
 * Mostly a value the schema takes, sometimes null (what the official libraries send for "absent":
 * test/fixtures/segment/README.md), sometimes an edge case: every path gets exercised, and null
 * in every field, whether or not the schema takes it there.
 */
const field = <T,>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: fc.constant(null), weight: 1 }, { arbitrary: edgy, weight: 1 });

const page = field(
  fc.record(
    { url: field(str(LIMITS.pageText)), path: field(str(LIMITS.pageText)), referrer: field(str(LIMITS.pageText)), title: field(str(LIMITS.pageTitle)), search: field(str(LIMITS.pageText)), other: edgy },
    { requiredKeys: [] },
  ),
);
const context = field(
  fc.record(
    { ip: field(str(LIMITS.ip)), userAgent: field(str(LIMITS.userAgent)), locale: field(str(LIMITS.locale)), page, traits: field(rec), consent: field(rec), library: edgy },
    { requiredKeys: [] },
  ),
);
const segmentLike = fc.record(
  {
    type: field(fc.constantFrom(...EVENT_TYPES)),
    messageId: field(nonEmpty(LIMITS.id)),
    timestamp: field(date),
    originalTimestamp: field(date),
    sentAt: field(date),
    anonymousId: field(nonEmpty(LIMITS.id)),
    userId: field(nonEmpty(LIMITS.id)),
    context,
    integrations: field(rec),
    properties: field(rec),
    traits: field(rec),
    channel: field(str(LIMITS.channel)),
    version: edgy,
    writeKey: field(str(LIMITS.writeKey)),
    event: field(nonEmpty(LIMITS.name)),
    name: field(str(LIMITS.name)),
    category: field(str(LIMITS.name)),
    groupId: field(nonEmpty(LIMITS.id)),
    previousId: field(nonEmpty(LIMITS.id)),
    extra: edgy,
  },
  { requiredKeys: [] },
);

/** Drop `undefined` members the way JSON.parse would never produce them. */
function jsonish<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('Segment fast path', () => {
  it('accepts only what zod accepts, and builds the same event', () => {
    let taken = 0;
    let takenWithNull = 0;
    fc.assert(
      fc.property(segmentLike, fc.constantFrom(...EVENT_TYPES), (input, type) => {
        const raw = jsonish(input);
        const slow = parseWith(raw, type, facts, undefined, false);
        const fast = parseWith(raw, type, facts, undefined, true);
        if (fastValid(raw, type) && slow.ok) {
          taken++;
          if (Object.values(raw).includes(null)) takenWithNull++;
        }
        if (raw.messageId === undefined && slow.ok && fast.ok) fast.event.messageId = slow.event.messageId;
        expect(fast).toEqual(slow);
      }),
      { numRuns: 3000, seed: 20261123 },
    );
    // Not vacuous: a good share of the inputs take the fast path.
    expect(taken).toBeGreaterThan(100);
    expect(takenWithNull).toBeGreaterThan(20);
  });

  it('takes the usual browser event (the benchmark hit) without zod', () => {
    const body = JSON.parse(eventFactory('t', 10).body(1)) as Record<string, unknown>;
    expect(fastValid(body, 'track')).toBe(true);
  });

  it('takes the nulls the libraries send, and leaves numeric ids and other nulls to zod', () => {
    expect(fastValid({ userId: null, anonymousId: 'a', properties: null, traits: null, context: { page: { referrer: null } } }, 'identify')).toBe(true);
    expect(fastValid({ anonymousId: 'a', name: null, category: null }, 'page')).toBe(true);
    expect(fastValid({ userId: 42 }, 'identify')).toBe(false);
    expect(fastValid({ userId: 'u', context: null }, 'identify')).toBe(false);
    expect(fastValid({ userId: 'u', integrations: null }, 'identify')).toBe(false);
    expect(parseWith({ userId: 42 }, 'identify', facts, undefined, true)).toMatchObject({ ok: true, event: { userId: '42' } });
  });

  it('does not copy fields of another type into the event', () => {
    const r = parseWith({ anonymousId: 'a', event: 'E', name: 'N', groupId: 'g', previousId: 'p' }, 'track', facts, undefined, true);
    expect(r.ok && r.event).toMatchObject({ event: 'E' });
    expect(r.ok && 'name' in r.event).toBe(false);
    expect(r.ok && 'groupId' in r.event).toBe(false);
  });
});
