import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { eventFactory } from '../../bench/event.ts';
import { EVENT_TYPES, type EventType } from './event.ts';
import { fastValid } from './segment-fast.ts';
import { LIMITS } from './segment-limits.ts';
import { parseWith, SEGMENT_SCHEMAS } from './segment.ts';

const facts = { ip: '203.0.113.9', userAgent: 'UA/1', now: new Date('2026-03-01T12:00:00.000Z') };

/** Values near every bound and every type the schema distinguishes. */
const edgy = fc.oneof(
  fc.constantFrom(undefined, null, '', 'x', 0, 42, 1.5, Number.MAX_SAFE_INTEGER, true, [], {}, ['a'], { a: 1 }),
  fc.constantFrom('2026-03-01T11:00:00.000Z', '2026-03-01', 'not a date', '2026-13-45T99:00:00Z'),
  fc.constantFrom(...Object.values(LIMITS)).chain((n) => fc.constantFrom('a'.repeat(n), 'a'.repeat(n + 1), 'a'.repeat(Math.max(0, n - 1)))),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A string of the field's own: short, at its bound, or one over it. */
const bounded = (short: fc.Arbitrary<string>, max: number): fc.Arbitrary<string> =>
  fc.oneof({ arbitrary: short, weight: 30 }, { arbitrary: fc.constant('a'.repeat(max)), weight: 3 }, { arbitrary: fc.constant('a'.repeat(max + 1)), weight: 1 });
const str = (max: number): fc.Arbitrary<string> => bounded(fc.string({ maxLength: 12 }), max);
const nonEmpty = (max: number): fc.Arbitrary<string> => bounded(fc.string({ minLength: 1, maxLength: 12 }), max);
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

/** Zod takes `raw` and gives it back as it was: the only inputs the quick check may accept. */
function zodTakesUnchanged(raw: Record<string, unknown>, type: EventType): boolean {
  const schema = SEGMENT_SCHEMAS[type];
  const r = schema.safeParse(raw);
  if (!r.success) return false;
  // Top-level members the schema does not know are stripped by zod and ignored by the event.
  const known = Object.fromEntries(Object.entries(raw).filter(([k]) => Object.hasOwn(schema.shape, k)));
  return isDeepStrictEqual(r.data, known);
}

/** Drop `undefined` members the way JSON.parse would never produce them. */
function jsonish<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('the quick check of the Segment schema', () => {
  it('accepts only what zod accepts, and builds the same event', () => {
    let taken = 0;
    let takenWithNull = 0;
    fc.assert(
      fc.property(segmentLike, fc.constantFrom(...EVENT_TYPES), (input, type) => {
        const raw = jsonish(input);
        const slow = parseWith(raw, type, facts, undefined, false);
        const fast = parseWith(raw, type, facts, undefined, true);
        if (fastValid(raw, type)) expect(zodTakesUnchanged(raw, type), JSON.stringify(raw).slice(0, 300)).toBe(true);
        if (fastValid(raw, type) && slow.ok) {
          taken++;
          if (Object.values(raw).includes(null)) takenWithNull++;
        }
        if (raw.messageId === undefined && slow.ok && fast.ok) fast.event.messageId = slow.event.messageId;
        expect(fast).toEqual(slow);
      }),
      { numRuns: 3000, seed: 20261123 },
    );
    // Not vacuous: a good share of the inputs pass the quick check.
    expect(taken).toBeGreaterThan(100);
    expect(takenWithNull).toBeGreaterThan(20);
  });

  it('agrees with the schema at every field\'s bound, one over it, null and a wrong type (the schema walked as JSON Schema)', () => {
    const bounds = new Set<number>();
    let probes = 0;
    for (const type of EVENT_TYPES) {
      const base = BASE[type];
      for (const leaf of leaves(z.toJSONSchema(SEGMENT_SCHEMAS[type], { io: 'input', unrepresentable: 'any' }) as JsonSchema)) {
        const values: unknown[] = [null, 7, 'x', {}, []];
        if (leaf.maxLength !== undefined) {
          bounds.add(leaf.maxLength);
          values.push('a'.repeat(leaf.maxLength), 'a'.repeat(leaf.maxLength + 1));
        }
        for (const value of values) {
          const raw = withValue(base, leaf.path, value);
          probes++;
          expect(fastValid(raw, type), `${type} ${leaf.path.join('.')} = ${JSON.stringify(value).slice(0, 20)}`).toBe(zodTakesUnchanged(raw, type));
        }
      }
    }
    // Every bound of the schema is one of LIMITS, and every one of LIMITS bounds a field.
    expect([...bounds].sort()).toEqual([...new Set(Object.values(LIMITS))].sort());
    expect(probes).toBeGreaterThan(500);
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

/** A valid event of each type (a probe of a nested field adds the objects above it). */
const BASE: Record<EventType, Record<string, unknown>> = {
  track: { anonymousId: 'a', event: 'E' },
  page: { anonymousId: 'a' },
  screen: { anonymousId: 'a' },
  identify: { anonymousId: 'a' },
  group: { anonymousId: 'a', groupId: 'g' },
  alias: { anonymousId: 'a', previousId: 'p', userId: 'u' },
};

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  maxLength?: number;
}

/** Every field of the schema, nested ones included, with its string bound if it has one. */
function leaves(schema: JsonSchema, path: string[] = []): Array<{ path: string[]; maxLength: number | undefined }> {
  const out: Array<{ path: string[]; maxLength: number | undefined }> = [];
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    const p = [...path, key];
    const variants = flatten(sub);
    const max = variants.find((v) => v.type === 'string')?.maxLength;
    out.push({ path: p, maxLength: max });
    for (const v of variants) if (v.properties !== undefined) out.push(...leaves(v, p));
  }
  return out;
}

function flatten(s: JsonSchema): JsonSchema[] {
  return s.anyOf === undefined ? [s] : s.anyOf.flatMap(flatten);
}

function withValue(base: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const root = structuredClone(base);
  let node = root;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
  return root;
}
