import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, parseSegmentEvent } from './segment.ts';

const now = new Date('2026-03-01T12:00:00.000Z');
const facts = { ip: '203.0.113.9', userAgent: 'UA/1', now };

describe('parseSegmentEvent', () => {
  it('builds the canonical event, generating a messageId and filling ip and user agent', () => {
    const r = parseSegmentEvent({ event: 'Signed Up', anonymousId: 'a1', properties: { plan: 'pro' } }, 'track', facts);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event).toMatchObject({
      type: 'track',
      event: 'Signed Up',
      anonymousId: 'a1',
      timestamp: now.toISOString(),
      receivedAt: now.toISOString(),
      context: { ip: '203.0.113.9', userAgent: 'UA/1' },
      properties: { plan: 'pro' },
      integrations: {},
    });
    expect(r.event.messageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps the sender ip, messageId and numeric ids as strings', () => {
    const r = parseSegmentEvent({ messageId: 'm-1', userId: 42, context: { ip: '198.51.100.1' } }, 'identify', facts);
    expect(r.ok && r.event).toMatchObject({ messageId: 'm-1', userId: '42', context: { ip: '198.51.100.1' } });
  });

  it('corrects the device clock with sentAt', () => {
    const r = parseSegmentEvent(
      { event: 'x', anonymousId: 'a', timestamp: '2026-03-01T11:00:00.000Z', sentAt: '2026-03-01T11:00:10.000Z' },
      'track',
      facts,
    );
    expect(r.ok && r.event.timestamp).toBe('2026-03-01T11:59:50.000Z');
  });

  it.each([
    [{ anonymousId: 'a' }, 'track', 'event: required'],
    [{ event: 'x' }, 'track', 'userId: userId or anonymousId is required'],
    [{ event: 'x', anonymousId: 'a', timestamp: 'yesterday' }, 'track', 'timestamp: not an ISO 8601 date'],
    [{ event: 'x', anonymousId: 'a', properties: [] }, 'track', 'properties:'],
    [{ anonymousId: 'a' }, 'group', 'groupId: required'],
    [{ anonymousId: 'a', type: 'page' }, 'track', 'type: is not "track" but was sent to the track route'],
    [{ anonymousId: 'a', type: 'boom' }, undefined, 'type: must be one of'],
    ['text', 'track', 'an event must be a JSON object'],
  ] as const)('rejects %j on %s with "%s"', (body, type, message) => {
    const r = parseSegmentEvent(body, type, facts);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    expect(text).toContain(message);
  });

  it('anonymous analytics-next event with userId null is accepted', () => {
    // @segment/analytics-next 1.84.3 sends `userId: user.id()`, null for a visitor not identified.
    const r = parseSegmentEvent({ type: 'track', event: 'Clicked', userId: null, anonymousId: 'a-1' }, undefined, facts);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event.anonymousId).toBe('a-1');
    expect('userId' in r.event).toBe(false);
  });

  it('takes null as absent where the libraries send it, and removes it from the event', () => {
    const r = parseSegmentEvent(
      { userId: 'u-1', anonymousId: null, properties: null, traits: null, name: null, category: null, context: { page: { url: 'https://s/', referrer: null, title: null } } },
      'page',
      facts,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event).toMatchObject({ userId: 'u-1', properties: {}, traits: {}, context: { page: { url: 'https://s/' } } });
    expect('anonymousId' in r.event).toBe(false);
    expect('name' in r.event).toBe(false);
    expect(r.event.context.page).toEqual({ url: 'https://s/' });
  });

  it('keeps a page category as properties.category, as the Segment spec says', () => {
    const r = parseSegmentEvent({ anonymousId: 'a', name: 'Shoes', category: 'Shop', properties: { path: '/shoes' } }, 'page', facts);
    expect(r.ok && r.event).toMatchObject({ name: 'Shoes', properties: { path: '/shoes', category: 'Shop' } });
    const own = parseSegmentEvent({ anonymousId: 'a', category: 'Shop', properties: { category: 'Own' } }, 'page', facts);
    expect(own.ok && own.event.properties).toEqual({ category: 'Own' });
    const track = parseSegmentEvent({ anonymousId: 'a', event: 'x', category: 'Shop' }, 'track', facts);
    expect(track.ok && track.event.properties).toEqual({});
  });

  it.each([
    [{ userId: null, anonymousId: null, event: 'x' }, 'track', 'userId: userId or anonymousId is required'],
    [{ anonymousId: 'a', groupId: null }, 'group', 'groupId:'],
    [{ anonymousId: 'a', event: null }, 'track', 'event:'],
    [{ anonymousId: 'a', event: 'x', context: null }, 'track', 'context:'],
    [{ anonymousId: 'a', event: 'x', integrations: null }, 'track', 'integrations:'],
    [{ anonymousId: 'a', event: 'x', timestamp: null }, 'track', 'timestamp:'],
    [{ anonymousId: 'a', name: null }, 'screen', 'name:'],
  ] as const)('still refuses null where no library sends it: %j on %s', (body, type, message) => {
    const r = parseSegmentEvent(body, type, facts);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.path}: ${i.message}`).join('; ')).toContain(message);
  });

  it('rejects nesting deeper than the bound', () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_DEPTH + 1; i++) deep = { d: deep };
    const r = parseSegmentEvent({ event: 'x', anonymousId: 'a', properties: deep }, 'track', facts);
    expect(r.ok).toBe(false);
  });

  it('merges batch defaults under the event and validates them', () => {
    const r = parseSegmentEvent(
      { type: 'track', event: 'x', anonymousId: 'a', context: { locale: 'fr' }, integrations: { meta: false } },
      undefined,
      facts,
      { context: { locale: 'en', page: { url: 'https://s/' } }, integrations: { All: true } },
    );
    expect(r.ok && r.event).toMatchObject({ context: { locale: 'fr', page: { url: 'https://s/' } }, integrations: { All: true, meta: false } });
    const bad = parseSegmentEvent({ type: 'track', event: 'x', anonymousId: 'a' }, undefined, facts, { context: { ip: 5 as unknown as string } });
    expect(bad.ok).toBe(false);
  });

  it('never throws on arbitrary JSON, and accepted events always have the required fields', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 'track', 'page', 'identify', 'group', 'alias', 'screen'), (json, type) => {
        const r = parseSegmentEvent(json, type, facts);
        if (r.ok) {
          expect(typeof r.event.messageId).toBe('string');
          expect(r.event.userId ?? r.event.anonymousId).toBeDefined();
          expect(Number.isNaN(Date.parse(r.event.timestamp))).toBe(false);
        } else {
          expect(r.issues.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts arbitrary valid track events', () => {
    fc.assert(
      fc.property(
        fc.record({ event: fc.string({ minLength: 1, maxLength: 200 }), anonymousId: fc.string({ minLength: 1, maxLength: 100 }), properties: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })) }),
        (body) => {
          const r = parseSegmentEvent(body, 'track', facts);
          expect(r.ok).toBe(true);
        },
      ),
    );
  });
});
