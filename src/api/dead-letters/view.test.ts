import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../store/journal.ts';
import { deadLetterView } from './view.ts';

const letter = (payload: string): DeadLetter => ({
  hitId: 3,
  destinationId: 'meta',
  state: 'dead',
  notBefore: Date.parse('2026-01-02T00:00:00Z'),
  attempts: 2,
  firstAttemptAt: 1,
  reason: 'status_400',
  code: 'TW_ERR_DELIVERY_REJECTED',
  lastStatus: 400,
  excerpt: 'bad request',
  updatedAt: 1,
  siteId: 'shop',
  receivedAt: Date.parse('2026-01-01T00:00:00Z'),
  payload,
});

describe('dead letter view', () => {
  it('shows what identifies the event, never its traits, properties or context', () => {
    const payload = JSON.stringify({
      event: { type: 'track', event: 'Purchase', messageId: 'm-1', userId: 'u-secret', traits: { email: 'jane@example.com' }, properties: { value: 9 }, context: { ip: '203.0.113.9' } },
      signals: { ip: '203.0.113.9' },
    });
    expect(deadLetterView(letter(payload))).toEqual({
      hitId: 3,
      destinationId: 'meta',
      code: 'TW_ERR_DELIVERY_REJECTED',
      reason: 'status_400',
      attempts: 2,
      lastStatus: 400,
      excerpt: 'bad request',
      diedAt: '2026-01-02T00:00:00.000Z',
      receivedAt: '2026-01-01T00:00:00.000Z',
      messageId: 'm-1',
      type: 'track',
      event: 'Purchase',
    });
  });

  it('any stored payload gives the same keys, its other fields never shown', () => {
    const secret = 'SECRET-VALUE';
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.record({ event: fc.dictionary(fc.string(), fc.jsonValue()) }).map((o) => JSON.stringify({ ...o, signals: { secret } }))), (payload) => {
        const v = deadLetterView(letter(payload));
        expect(Object.keys(v).sort()).toEqual(['attempts', 'code', 'destinationId', 'diedAt', 'event', 'excerpt', 'hitId', 'lastStatus', 'messageId', 'reason', 'receivedAt', 'type'].sort());
        for (const k of ['messageId', 'type', 'event'] as const) expect(v[k] === null || (typeof v[k] === 'string' && v[k].length <= 200)).toBe(true);
        expect(JSON.stringify(v)).not.toContain(secret);
      }),
      { numRuns: 300 },
    );
  });
});
