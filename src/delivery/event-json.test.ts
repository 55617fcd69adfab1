import { describe, expect, it } from 'vitest';
import type { Event } from '../ingest/event.ts';
import { eventJson, knownJson } from './event-json.ts';
import { decodeJournaledHit, encodeJournaledHit } from './journal-payload.ts';

const event = (): Event => ({
  messageId: 'm-1',
  type: 'track',
  event: 'Order "Completed"',
  timestamp: '2026-01-01T00:00:00.000Z',
  receivedAt: '2026-01-01T00:00:00.100Z',
  context: { ip: '203.0.113.9', page: { url: 'https://shop.example/é' } },
  properties: { value: 59.9, items: [{ sku: 'a\u2028b' }] },
  traits: {},
  integrations: { All: true },
});

describe('event JSON, made once per event object', () => {
  it('is JSON.stringify of the event, and known afterwards for that object only', () => {
    const e = event();
    expect(knownJson(e)).toBeUndefined();
    const text = eventJson(e);
    expect(text).toBe(JSON.stringify(e));
    expect(eventJson(e)).toBe(text);
    expect(knownJson(e)).toBe(text);
    // A copy (a truncated IP, a redaction) is another object: it is serialised on its own.
    expect(knownJson({ ...e })).toBeUndefined();
    expect(knownJson('text')).toBeUndefined();
    expect(knownJson(null)).toBeUndefined();
  });

  it('the journal payload is the text JSON.stringify({ event, signals }) gives, and decodes back', () => {
    const e = event();
    const signals = { gpc: true, gcs: 'G111', visitor: { id: 'v-1', source: 'anonymousId' } };
    const payload = encodeJournaledHit({ event: e, signals });
    expect(payload).toBe(JSON.stringify({ event: e, signals }));
    expect(decodeJournaledHit(payload)).toEqual({ event: e, signals });
    // The batcher of a destination whose item is the event itself splices this same text.
    expect(knownJson(e)).toBe(JSON.stringify(e));
  });
});
