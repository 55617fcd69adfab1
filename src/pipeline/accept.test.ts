import { describe, expect, it } from 'vitest';
import { createConsentResolver } from '../consent/resolve.ts';
import { UnavailableError } from '../errors.ts';
import { compileSources, type HitSources } from '../identity/visitor.ts';
import type { Event } from '../ingest/event.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { createAccept, type AcceptDeps } from './accept.ts';

const T0 = Date.parse('2026-11-30T12:00:00.000Z');

function event(over: Partial<Event> = {}): Event {
  return { messageId: 'm1', type: 'track', event: 'x', timestamp: new Date(T0).toISOString(), receivedAt: new Date(T0).toISOString(), anonymousId: 'v-1', context: {}, properties: {}, traits: {}, integrations: {}, ...over };
}

/** A response that records its headers as Node's would. */
function response(headersSent = false): NonNullable<HitSources['response']> & { headers: Map<string, unknown> } {
  const headers = new Map<string, unknown>();
  return { headers, headersSent, getHeader: (n) => headers.get(n), setHeader: (n, v) => headers.set(n, v) };
}

function setup(over: Partial<AcceptDeps> = {}) {
  const clock = new FakeClock(T0);
  const links: [string, string][] = [];
  let accepting = true;
  const accept = createAccept({
    accepting: () => accepting,
    identity: { sources: compileSources([{ body: 'anonymousId' }]), maxIdLength: 128 },
    resolver: createConsentResolver({ categories: { analytics: { gcm: ['analytics_storage'] } }, tcf: { maxLength: 2048, maxAgeDays: 390, cacheEntries: 10 } }),
    cookie: { enabled: true, name: '_tw_vid', maxAgeDays: 1, category: 'analytics' },
    linkHit: (v, u) => links.push([v, u]),
    clock,
    ...over,
  });
  return { accept, clock, links, stop: () => (accepting = false) };
}

const hit = (query: string, res?: HitSources['response'], cookie?: string): HitSources => ({
  headers: cookie === undefined ? {} : { cookie },
  query: new URLSearchParams(query),
  body: { anonymousId: 'v-1' },
  ...(res === undefined ? {} : { response: res }),
});

describe('the accept step', () => {
  it('reads identity and signals, and resolves the hit consent the cookie needs', () => {
    const { accept } = setup();
    const h = accept(event(), hit('gcs=G111'));
    expect(h.signals).toMatchObject({ gpc: false, gcs: 'G111', visitor: { id: 'v-1', source: 'body:anonymousId' } });
    expect(h.requestConsent?.categories.analytics).toMatchObject({ status: 'granted', source: 'gcm' });
  });

  it('writes the visitor cookie on the answer, once however many hits share it', () => {
    const { accept } = setup();
    const res = response();
    accept(event(), hit('gcs=G111', res));
    accept(event({ messageId: 'm2' }), hit('gcs=G111', res));
    expect(res.headers.get('set-cookie')).toEqual(['_tw_vid=v-1; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax']);
  });

  it('writes no cookie without the grant, nor once the answer is sent', () => {
    const { accept } = setup();
    const denied = response();
    accept(event(), hit('gcs=G100', denied));
    expect(denied.headers.has('set-cookie')).toBe(false);
    const sent = response(true);
    accept(event(), hit('gcs=G111', sent));
    expect(sent.headers.has('set-cookie')).toBe(false);
  });

  it('resolves nothing at the answer when the cookie is off', () => {
    const { accept } = setup({ cookie: { enabled: false, name: '_tw_vid', maxAgeDays: 1, category: 'analytics' } });
    expect(accept(event(), hit('gcs=G111')).requestConsent).toBeUndefined();
  });

  it('links a valid user id to the visitor, and dates click ids on the injected clock', () => {
    const { accept, clock, links } = setup();
    clock.advance(5_000);
    const h = accept(event({ userId: 'u-1', context: { page: { url: 'https://shop.example/?fbclid=abc' } } }), hit(''));
    expect(links).toEqual([['v-1', 'u-1']]);
    expect(h.event.context.clickIds).toEqual({ fbclid: 'abc', fbc: `fb.1.${T0 + 5_000}.abc` });
    accept(event({ userId: 'not valid!' }), hit(''));
    expect(links).toHaveLength(1);
  });

  it('refuses a hit once shutdown began', () => {
    const { accept, stop } = setup();
    stop();
    expect(() => accept(event(), hit(''))).toThrow(UnavailableError);
  });
});
