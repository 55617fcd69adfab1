import { describe, expect, it } from 'vitest';
import type { Event, EventType } from '../src/ingest/event.ts';
import { parseSegmentEvent } from '../src/ingest/segment.ts';
import { parseBatch } from '../src/ingest/segment-routes.ts';
import { loadJsonFixturesDeep } from './fixtures/load.ts';
import { post, withTagwarden } from './helpers.ts';

/**
 * Every payload of test/fixtures/segment/** (the official libraries' request bodies, null fields
 * as they send them: see the README there) is accepted, one event at a time on its route and
 * inside a batch, reaches a destination, and leaves no null in the canonical event.
 */

type Json = Record<string, unknown>;
const fixtures = loadJsonFixturesDeep<Json>('segment').map(([path, file]): [string, Json] => [path, bodyOf(file)]);

/** A fixture's request body: the file itself, or its `body` when it records the request around it. */
function bodyOf(file: Json): Json {
  const inner = file.body;
  return file.type === undefined && file.batch === undefined && inner !== null && typeof inner === 'object' ? (inner as Json) : file;
}

/** The events of a body: the batch's items, or the one event. */
function eventsOf(body: Json): Json[] {
  return Array.isArray(body.batch) ? (body.batch as Json[]) : [body];
}

const SHORT: Record<EventType, string> = { track: 't', page: 'p', identify: 'i', screen: 's', group: 'g', alias: 'a' };
const facts = { ip: '203.0.113.9', userAgent: 'UA/1', now: new Date('2026-11-30T15:00:00.000Z') };

/** The canonical fields that are strings or objects: none of them may be null. */
function nullsIn(event: Event): string[] {
  const found: string[] = [];
  for (const [k, v] of Object.entries(event)) if (v === null) found.push(k);
  for (const [k, v] of Object.entries(event.context.page ?? {})) if (v === null) found.push(`context.page.${k}`);
  for (const k of ['ip', 'userAgent', 'locale', 'traits', 'consent'] as const) if (event.context[k] === null) found.push(`context.${k}`);
  return found;
}

describe('official Segment library payloads (test/fixtures/segment)', () => {
  it('has fixtures of every library', () => {
    const libraries = new Set(fixtures.map(([path]) => path.split('/')[0]));
    for (const lib of ['analytics-node', 'analytics.js-classic', 'analytics-next-source', 'analytics-swift', 'analytics-kotlin', 'analytics-react-native']) {
      expect(libraries).toContain(lib);
    }
  });

  describe.each(fixtures)('%s', (_path, body) => {
    it('parses every event on its own route and inside the batch, with no null in the canonical event', () => {
      for (const item of eventsOf(body)) {
        const r = parseSegmentEvent(item, item.type as EventType, facts);
        expect(r.ok ? [] : r.issues).toEqual([]);
        if (r.ok) expect(nullsIn(r.event)).toEqual([]);
      }
      const batch = parseBatch(Array.isArray(body.batch) ? body : { batch: [body] }, facts, 100);
      expect('error' in batch ? batch.error.message : batch.rejected).toEqual([]);
      if (!('error' in batch)) for (const { event } of batch.accepted) expect(nullsIn(event)).toEqual([]);
    });
  });

  describe('over HTTP, to a destination', () => {
    const ctx = withTagwarden((vendorUrl) => ({
      site: { id: 'shop', dataControlMode: 'disabled', categories: { analytics: {}, advertising: {} } },
      destinations: [{ id: 'hook', template: 'webhook', settings: { url: `${vendorUrl}/hook` } }],
    }));

    const next = (file: string): Json => {
      const found = fixtures.find(([path]) => path === `analytics-next-source/${file}`);
      if (found === undefined) throw new Error(`no fixture ${file}`);
      return found[1];
    };

    it('anonymous analytics-next event with userId null is accepted (on /v1/t, /v1/p, /v1/i and /v1/b) and delivered without userId', async () => {
      const track = { ...next('track-anonymous-userid-null.json'), messageId: 'regress-userid-null-t' };
      const page = { ...next('page-category-referrer-null.json'), messageId: 'regress-userid-null-p' };
      const identify = { ...next('identify-anonymous-userid-null.json'), messageId: 'regress-userid-null-i' };
      expect(await post(`${ctx.tw.url}/v1/t`, track)).toEqual({ status: 200, body: { success: true } });
      expect(await post(`${ctx.tw.url}/v1/p`, page)).toEqual({ status: 200, body: { success: true } });
      expect(await post(`${ctx.tw.url}/v1/i`, identify)).toEqual({ status: 200, body: { success: true } });
      const batch = { batch: [{ ...track, messageId: 'regress-userid-null-b1' }, { ...page, messageId: 'regress-userid-null-b2' }], sentAt: '2026-11-30T11:00:06.000Z' };
      expect(await post(`${ctx.tw.url}/v1/b`, batch)).toEqual({ status: 200, body: { success: true } });
      await ctx.tw.app.flush(5000);
      const delivered = ctx.vendor.hits.flatMap((h) => (h.body as { batch: Event[] }).batch).filter((e) => e.messageId.startsWith('regress-userid-null-'));
      expect(delivered.map((e) => e.messageId).sort()).toEqual(['regress-userid-null-b1', 'regress-userid-null-b2', 'regress-userid-null-i', 'regress-userid-null-p', 'regress-userid-null-t']);
      for (const e of delivered) {
        expect('userId' in e).toBe(false);
        expect(e.anonymousId).toBe('c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f');
      }
      // The page's category is kept (as properties.category, Segment's page spec), its null referrer is not.
      const p = delivered.find((e) => e.messageId === 'regress-userid-null-p');
      expect(p).toMatchObject({ name: 'Shoes', properties: { category: 'Shop' } });
      expect(p?.context.page).toEqual({ path: '/shoes', search: '', title: 'Shoes', url: 'https://www.example.com/shoes' });
    });

    it.each(fixtures)('%s: accepted on the single routes and in /v1/batch, and delivered', async (path, body) => {
      const events = eventsOf(body);
      for (const item of events) {
        const type = item.type as EventType;
        // A batch item has no own route: sent alone, it goes to its type's route (long and short).
        const single = await post(`${ctx.tw.url}/v1/${type}`, item);
        expect(single, `${path} on /v1/${type}`).toEqual({ status: 200, body: { success: true } });
        const short = await post(`${ctx.tw.url}/v1/${SHORT[type]}`, item, { 'content-type': 'text/plain;charset=UTF-8' });
        expect(short, `${path} on /v1/${SHORT[type]}`).toEqual({ status: 200, body: { success: true } });
      }
      const batch = Array.isArray(body.batch) ? body : { batch: [body] };
      for (const route of ['/v1/batch', '/v1/b']) {
        expect(await post(`${ctx.tw.url}${route}`, batch), `${path} on ${route}`).toEqual({ status: 200, body: { success: true } });
      }
      await ctx.tw.app.flush(5000);
      const delivered = ctx.vendor.hits.flatMap((h) => (h.body as { batch: Event[] }).batch);
      for (const item of events) {
        if (typeof item.messageId !== 'string') continue;
        const copies = delivered.filter((e) => e.messageId === item.messageId);
        // Two single routes and two batch routes: four copies of each event (more if another file has it too).
        expect(copies.length, `${path}: ${item.messageId} delivered`).toBeGreaterThanOrEqual(4);
        for (const e of copies) expect(nullsIn(e)).toEqual([]);
      }
    });
  });
});
