import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientIdFor } from './client-id.ts';

describe('clientIdFor', () => {
  it('is a version-8 RFC 9562 UUID, pinned: ids already handed out must never change', () => {
    const id = clientIdFor('shop', 'me@example.com');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(id).toBe(PINNED);
  });

  it('the same (site, custom user id) always gives the same id; any other pair another', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (s1, u1, s2, u2) => {
        expect(clientIdFor(s1, u1)).toBe(clientIdFor(s1, u1));
        if (s1 !== s2 || u1 !== u2) expect(clientIdFor(s1, u1)).not.toBe(clientIdFor(s2, u2));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('does not confuse where the site ends and the user id begins', () => {
    expect(clientIdFor('ab', 'c')).not.toBe(clientIdFor('a', 'bc'));
    expect(clientIdFor('a:b', 'c')).not.toBe(clientIdFor('a', 'b:c'));
  });
});

// Computed independently: SHA-256(namespace bytes || '["shop","me@example.com"]'), first 16 bytes, version 8, variant 10.
const PINNED = '68c04ff6-dc36-82ee-97bc-7b0addbf18b6';
