import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../lib/fake-clock.ts';
import { tagRequestId } from '../observability/request-id.ts';
import { previewReader } from './mark.ts';
import { createPreviewRegistry } from './registry.ts';
import { previewTokens } from './token.ts';

describe('previewReader', () => {
  const clock = new FakeClock(1_000_000);
  const registry = createPreviewRegistry({ tokens: previewTokens('admin-key-0123456789'), clock });
  let resolves = 0;
  const counted = { get active() { return registry.active; }, resolve: (t: unknown) => (resolves++, registry.resolve(t)) };
  const read = previewReader(counted, pino({ level: 'silent' }));

  it('reads nothing while no preview is on', () => {
    expect(read({ 'x-tagwarden-preview': 'anything' })).toBeUndefined();
    expect(resolves).toBe(0);
  });

  it('once per request (its headers object): the header, else the cookie; an invalid token is an ordinary hit', () => {
    const a = registry.start({ mode: 'test', ttlMs: 60_000, testEventCodes: { meta: 'T' } });
    const b = registry.start({ mode: 'silent', ttlMs: 60_000, testEventCodes: {} });
    const headers = { 'x-tagwarden-preview': a.token, cookie: `tw_preview=${b.token}` };
    resolves = 0;
    for (let i = 0; i < 50; i++) expect(read(headers)?.id).toBe(a.id);
    expect(resolves).toBe(1);
    expect(read({ cookie: `x=1; tw_preview=${b.token}` })).toMatchObject({ id: b.id, mode: 'silent' });
    expect(read({ cookie: 'tw_preview=tp1.forged' })).toBeUndefined();
    expect(read({ 'x-tagwarden-preview': ['two', 'copies'] })).toBeUndefined();
    registry.stop(b.id);
    expect(read({ cookie: `tw_preview=${b.token}` })).toBeUndefined();
  });

  it('an ignored token is logged at debug with the request id, never the token (audit, issue 15)', () => {
    registry.start({ mode: 'silent', ttlMs: 60_000, testEventCodes: {} });
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const headers = { 'x-tagwarden-preview': 'tp1.forged.token' };
    tagRequestId(headers, 'req-7');
    expect(previewReader(registry, log)(headers)).toBeUndefined();
    expect(lines).toEqual([expect.objectContaining({ msg: 'preview token ignored (invalid, expired or stopped)', requestId: 'req-7', from: 'header' })]);
    expect(JSON.stringify(lines)).not.toContain('forged');
  });
});
