import { loadJsonFixtures } from '../../test/fixtures/load.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Event } from './event.ts';
import { parseGa4Hits } from './ga4.ts';

const now = new Date('2026-03-01T12:00:00.000Z');
const facts = { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (fixture)', now };
interface Ga4Fixture {
  description: string;
  request: { method: 'GET' | 'POST'; query: string; contentType?: string; body?: string };
  params?: Record<string, string>[];
  events: Omit<Event, 'messageId'>[];
}


function withoutId(e: Event): Omit<Event, 'messageId'> {
  const { messageId: _id, ...rest } = e;
  return rest;
}

function parse(query: string, body?: string, limits?: Parameters<typeof parseGa4Hits>[3]) {
  return parseGa4Hits(new URLSearchParams(query), body, facts, limits);
}

const BASE = 'v=2&tid=G-TEST1&cid=111.222&_p=999&_s=1';

describe('parseGa4Hits: golden fixtures', () => {
  const fixtures = loadJsonFixtures<Ga4Fixture>('ga4');
  it('has the fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(4));
  it.each(fixtures)('%s', (_name, fx) => {
    const r = parseGa4Hits(new URLSearchParams(fx.request.query), fx.request.body, facts);
    expect(r.rejected).toBe(0);
    expect(r.hits.map((h) => withoutId(h.event))).toEqual(fx.events);
    fx.params?.forEach((expected, i) => {
      for (const [k, v] of Object.entries(expected)) expect(r.hits[i]?.params.get(k)).toBe(v);
    });
  });
});

describe('parseGa4Hits', () => {
  it('maps ep.* to strings, epn.* to numbers, up.*/upn.* to traits, dropping non-numeric epn', () => {
    const r = parse(`${BASE}&en=x&ep.a=1&epn.b=2.5&epn.c=abc&epn.d=&up.u=v&upn.n=4&ep.__proto__=p&ep.=e`);
    expect(r.hits[0]?.event).toMatchObject({ type: 'track', event: 'x', properties: { a: '1', b: 2.5 }, traits: { u: 'v', n: 4 } });
    expect(Object.keys(r.hits[0]?.event.properties ?? {})).toEqual(['a', 'b']);
  });

  it('reads the ecommerce currency gtag.js sends as cu, unless an event parameter already gave one', () => {
    expect(parse(`${BASE}&en=purchase&cu=EUR&epn.value=9`).hits[0]?.event.properties).toEqual({ value: 9, currency: 'EUR' });
    expect(parse(`${BASE}&en=purchase&cu=EUR&ep.currency=USD`).hits[0]?.event.properties).toEqual({ currency: 'USD' });
  });

  it('reads items pr1…pr200 in order; unknown fields, empty items and bad numbers are left out', () => {
    const e = parse(`${BASE}&en=add_to_cart&pr2=idB~qtx~zz9~k1a~v1b~k2__proto__~v2p&pr1=idA~prNaN~ds1.5~lnHome&pr0=idZero&pr201=idFar&pr3=`).hits[0]?.event;
    expect(e?.properties.products).toEqual([
      { product_id: 'A', discount: 1.5, item_list_name: 'Home' },
      { product_id: 'B', a: 'b' },
    ]);
    expect((e?.context.ga4 as { items: Record<string, string> }).items).toEqual({ pr1: 'idA~prNaN~ds1.5~lnHome', pr2: 'idB~qtx~zz9~k1a~v1b~k2__proto__~v2p' });
    // Products the hit gave as an event parameter are not replaced.
    expect(parse(`${BASE}&en=x&ep.products=mine&pr1=idA`).hits[0]?.event.properties.products).toBe('mine');
  });

  it('items: at most 200, and every value a string or a finite number, whatever the text', () => {
    const many = Array.from({ length: 199 }, (_, i) => `pr${i + 1}=id${i}`).join('&');
    expect(parse(`${BASE}&en=x&${many}`).hits[0]?.event.properties.products).toHaveLength(199);
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom('idX', 'pr1e400', 'qt-0', 'k0', 'v0', '~', 'k9a', 'v9b')), { maxLength: 20 }), (fields) => {
        const products = parseGa4Hits(new URLSearchParams([...new URLSearchParams(`${BASE}&en=x`), ['pr1', fields.join('~')]]), undefined, facts).hits[0]?.event.properties.products as Array<Record<string, unknown>> | undefined;
        for (const product of products ?? []) {
          for (const v of Object.values(product)) expect(typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))).toBe(true);
          expect(Object.getPrototypeOf(product)).toBe(Object.prototype);
        }
      }),
      { seed: 20261123, numRuns: 300 },
    );
  });

  it('refuses a hit without v=2, tid or en', () => {
    for (const q of ['tid=G-1&en=x&v=1', 'v=2&en=x', 'v=2&tid=G-1', 'v=2&tid=G-1&en=']) {
      expect(parse(q)).toEqual({ hits: [], rejected: 1, refusals: { missing_v2_tid_en: 1 } });
    }
  });

  it('lets per-line parameters win over the URL', () => {
    const r = parse(`${BASE}&en=a&dt=Url`, 'en=b&dt=Line\nen=c');
    expect(r.hits.map((h) => [h.event.event, h.event.context.page?.title])).toEqual([['b', 'Line'], ['c', 'Url']]);
  });

  it('skips invalid lines and counts them, keeping the others', () => {
    const r = parse('v=2&tid=G-1&cid=1.2', 'en=ok\nv=1&en=bad\n\nen=\nen=ok2');
    expect(r.hits.map((h) => h.event.event)).toEqual(['ok', 'ok2']);
    expect(r.rejected).toBe(2);
  });

  it('bounds hits per request, parameter count and lengths', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `en=e${i}`).join('\n');
    expect(parse(BASE, lines)).toMatchObject({ rejected: 5, refusals: { too_many_hits: 5 } });
    expect(parse(BASE, lines).hits).toHaveLength(25);
    expect(parse(BASE, lines, { maxHits: 2 }).hits).toHaveLength(2);
    const many = Array.from({ length: 450 }, (_, i) => `ep.p${i}=1`).join('&');
    expect(parse(`${BASE}&en=x&${many}`)).toEqual({ hits: [], rejected: 1, refusals: { over_bounds: 1 } });
    expect(parse(`${BASE}&en=x&ep.long=${'a'.repeat(9000)}`)).toEqual({ hits: [], rejected: 1, refusals: { over_bounds: 1 } });
    expect(parse(`${BASE}&en=x&ep.${'k'.repeat(200)}=1`)).toEqual({ hits: [], rejected: 1, refusals: { over_bounds: 1 } });
  });

  it('derives a deterministic messageId from tid, cid, _p, _s, en (and the line), else a random one', () => {
    const a = parse(`${BASE}&en=x`).hits[0]?.event.messageId;
    expect(a).toMatch(/^ga4-[0-9a-f]{32}$/);
    expect(parse(`${BASE}&en=x`).hits[0]?.event.messageId).toBe(a);
    expect(parse(`${BASE}&en=y`).hits[0]?.event.messageId).not.toBe(a);
    expect(parse(BASE.replace('_s=1', '_s=2') + '&en=x').hits[0]?.event.messageId).not.toBe(a);
    const twins = parse(BASE, 'en=x\nen=x').hits.map((h) => h.event.messageId);
    expect(new Set(twins).size).toBe(2);
    expect(parse('v=2&tid=G-1&en=x').hits[0]?.event.messageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('page_view without dt is a page without a name; an unparseable dl keeps only the url; a bad sr is ignored', () => {
    const e = parse(`${BASE}&en=page_view&dl=not%20a%20url&sr=big`).hits[0]?.event;
    expect(e).toMatchObject({ type: 'page', context: { page: { url: 'not a url' } }, properties: { url: 'not a url' } });
    expect(e?.name).toBeUndefined();
    expect(e?.context.screen).toBeUndefined();
  });

  it('never throws and never yields more than maxHits events on arbitrary input', () => {
    const param = fc.oneof(fc.constantFrom('v=2', 'tid=G-1', 'en=x', 'cid=1.2', '_p=1', '_s=1', 'dl=http%3A%2F%2Fa', 'sr=1x1', 'epn.v=1e400', 'ep.__proto__=1'), fc.string());
    const query = fc.array(param, { maxLength: 12 }).map((ps) => ps.join('&'));
    const body = fc.option(fc.array(query, { maxLength: 40 }).map((ls) => ls.join('\n')), { nil: undefined });
    fc.assert(
      fc.property(query, body, fc.integer({ min: 1, max: 30 }), (q, b, maxHits) => {
        const r = parseGa4Hits(new URLSearchParams(q), b, facts, { maxHits });
        expect(r.hits.length).toBeLessThanOrEqual(maxHits);
        expect(r.rejected).toBeGreaterThanOrEqual(0);
        for (const h of r.hits) JSON.stringify(h.event);
      }),
      { seed: 20260301, numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (q, b) => {
        const r = parseGa4Hits(new URLSearchParams(q), b, facts);
        expect(r.hits.length).toBeLessThanOrEqual(25);
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});
