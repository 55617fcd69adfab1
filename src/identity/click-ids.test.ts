import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Event } from '../ingest/event.ts';
import { clickIdsFrom, withClickIds } from './click-ids.ts';

const now = new Date(1_700_000_000_000);

describe('click ids', () => {
  it.each([
    ['https://shop.example/?gclid=Cj0KCQ', { gclid: 'Cj0KCQ' }],
    ['https://shop.example/?wbraid=WB1&gbraid=GB2', { wbraid: 'WB1', gbraid: 'GB2' }],
    ['https://shop.example/p?fbclid=IwAR2x&utm_source=fb', { fbclid: 'IwAR2x', fbc: 'fb.1.1700000000000.IwAR2x' }],
    ['https://shop.example/?ttclid=E.C.P.abc', { ttclid: 'E.C.P.abc' }],
    ['https://shop.example/?gclid=', undefined],
    ['https://shop.example/?other=1', undefined],
    ['not a url?gclid=x', undefined],
    [undefined, undefined],
  ])('%s', (url, expected) => {
    expect(clickIdsFrom(url, now)).toEqual(expected);
  });

  it('adds them to the event', () => {
    const base: Event = { messageId: 'm', type: 'track', timestamp: '', receivedAt: '', context: { page: { url: 'https://s.example/?fbclid=abc' } }, properties: {}, traits: {}, integrations: {} };
    expect(withClickIds(base, now).context).toMatchObject({ clickIds: { fbclid: 'abc', fbc: 'fb.1.1700000000000.abc' } });
    const plain = { ...base, context: { page: { url: 'https://s.example/' } } };
    expect(withClickIds(plain, now)).toBe(plain);
  });

  it('never throws and keeps ids bounded', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (s) => {
        const ids = clickIdsFrom(`https://x.example/?gclid=${encodeURIComponent(s)}&fbclid=${encodeURIComponent(s)}`, now);
        for (const v of Object.values(ids ?? {})) expect(v.length).toBeLessThanOrEqual(600);
      }),
      { seed: 20261123 },
    );
  });
});
