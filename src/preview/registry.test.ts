import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { createPreviewRegistry } from './registry.ts';
import { previewTokens } from './token.ts';

describe('preview registry', () => {
  it('at most 20 at once; expiry on the clock ends streams and refuses the token; delivery answers reach the preview', () => {
    const clock = new FakeClock(0);
    const registry = createPreviewRegistry({ tokens: previewTokens('admin-key-0123456789'), clock });
    const started = Array.from({ length: 20 }, () => registry.start({ mode: 'silent', ttlMs: 1000, testEventCodes: {} }));
    expect(() => registry.start({ mode: 'silent', ttlMs: 1000, testEventCodes: {} })).toThrow(/at most 20/);
    const got: string[] = [];
    const stream = { send: (e: string, d: unknown) => got.push(`${e} ${JSON.stringify(d)}`), end: (r: string) => got.push(`end ${r}`) };
    const sub = registry.subscribe(started[0]!.id, stream);
    expect(typeof sub).toBe('object');
    registry.awaitDelivery(started[0]!.id, 'meta', 'm-1');
    registry.delivered({ destinationId: 'meta', messageIds: ['m-1', 'm-2'], outcome: 'retry_scheduled', status: 503 });
    registry.delivered({ destinationId: 'meta', messageIds: ['m-1'], outcome: 'delivered', status: 200 });
    registry.delivered({ destinationId: 'meta', messageIds: ['m-1'], outcome: 'delivered', status: 200 });
    expect(got).toEqual([
      'delivery {"messageId":"m-1","destinationId":"meta","outcome":"retry_scheduled","status":503}',
      'delivery {"messageId":"m-1","destinationId":"meta","outcome":"delivered","status":200}',
    ]);
    expect(registry.resolve(started[0]!.token)?.mark.id).toBe(started[0]!.id);
    clock.advance(1000);
    expect(got.at(-1)).toBe('end expired');
    expect(registry.active).toBe(0);
    expect(registry.resolve(started[0]!.token)).toBeUndefined();
    expect(registry.subscribe(started[0]!.id, stream)).toBe('unknown');
  });
});
