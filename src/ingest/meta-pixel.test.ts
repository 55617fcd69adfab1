import { loadJsonFixtures } from '../../test/fixtures/load.ts';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMultipartForm, readMultipartFields, type MultipartOutcome } from '../http/multipart-form.ts';
import { LIMITS, parsePixelHit } from './meta-pixel.ts';

const now = new Date('2026-03-01T12:00:00.000Z');
const facts = { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', now };
const HASH = '973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b';

interface PixelFixture {
  description: string;
  request: { method: 'GET' | 'POST'; path?: string; query: string; contentType?: string; body?: string };
  event: Record<string, unknown>;
}

/** A fixture's parameters: its body (a urlencoded form, or multipart read as /tr reads it) first, then its query. */
async function paramsOf(fx: PixelFixture): Promise<URLSearchParams> {
  const { contentType = '', body = '', query } = fx.request;
  if (!isMultipartForm(contentType)) return new URLSearchParams(`${body}&${query}`);
  const o = await new Promise<MultipartOutcome>((resolve) => {
    readMultipartFields(Readable.from([Buffer.from(body)]), { 'content-type': contentType }, { maxBytes: 1e6, maxParts: 1000, maxNameBytes: 1000, maxValueBytes: 1e5 }, resolve);
  });
  if ('error' in o) throw o.error;
  return new URLSearchParams([...o.fields, ...new URLSearchParams(query)]);
}

const fixtures = loadJsonFixtures<PixelFixture>('meta-pixel');

const parse = (query: string, f = facts) => parsePixelHit(new URLSearchParams(query), f);

describe('parsePixelHit golden fixtures', () => {
  it('has the fixtures, multipart ones included', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(5);
    expect(fixtures.filter(([, fx]) => isMultipartForm(fx.request.contentType)).length).toBeGreaterThanOrEqual(2);
  });

  it.each(fixtures)('%s', async (_name, fx) => {
    const r = parsePixelHit(await paramsOf(fx), facts);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const { messageId, ...rest } = r.event;
    if ('messageId' in fx.event) expect(messageId).toBe(fx.event.messageId);
    else expect(messageId).toMatch(/^[0-9a-f-]{36}$/);
    const { messageId: _m, ...expected } = fx.event;
    expect(rest).toStrictEqual(expected);
  });
});

describe('parsePixelHit', () => {
  it.each([
    ['ev=PageView', 'bad_pixel_id', 'id: required'],
    ['id=&ev=PageView', 'bad_pixel_id', 'id: required'],
    ['id=abc&ev=PageView', 'bad_pixel_id', 'id: not a pixel id'],
    ['id=123', 'bad_event_name', 'ev: required'],
    ['id=123&ev=%20', 'bad_event_name', 'ev: required'],
    [`id=123&ev=${'x'.repeat(LIMITS.eventName + 1)}`, 'bad_event_name', 'ev: not an event name'],
    ['id=123&ev=a%0Ab', 'bad_event_name', 'ev: not an event name'],
  ])('rejects %s', (q, code, reason) => {
    expect(parse(q)).toEqual({ ok: false, code, reason });
  });

  it('keeps only Meta\'s advanced-matching keys, and never the digest of an empty field', () => {
    const d = 'a'.repeat(64);
    const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    const r = parse(`id=1&ev=Lead&ud[em]=${d}&ud[ph]=${empty}&ud[secret_note]=${d}&ud[country]=${d.toUpperCase()}`);
    expect(r.ok && r.event.context.meta).toMatchObject({ userData: { em: d, country: d } });
    expect(r.ok && Object.keys((r.event.context.meta as { userData: object }).userData).sort()).toEqual(['country', 'em']);
  });

  it('keeps cd[contents] nested deeper than a list of objects as the text sent', () => {
    const deep = JSON.stringify([{ id: 'A', x: [[['too deep']]] }]);
    const r = parse(`id=1&ev=Purchase&cd[contents]=${encodeURIComponent(deep)}`);
    expect(r.ok && r.event.properties.contents).toBe(deep);
    const flat = JSON.stringify([{ id: 'A', quantity: 1 }]);
    const ok = parse(`id=1&ev=Purchase&cd[contents]=${encodeURIComponent(flat)}`);
    expect(ok.ok && ok.event.properties.contents).toEqual([{ id: 'A', quantity: 1 }]);
  });

  it('bounds the parameter count, key and value lengths', () => {
    const many = Array.from({ length: LIMITS.params + 1 }, (_, i) => `p${i}=1`).join('&');
    expect(parse(`id=1&ev=X&${many}`)).toMatchObject({ ok: false, code: 'over_bounds', reason: expect.stringMatching(/parameters/) as unknown });
    expect(parse(`id=1&ev=X&${'k'.repeat(LIMITS.key + 1)}=1`)).toMatchObject({ ok: false, code: 'over_bounds' });
    expect(parse(`id=1&ev=X&dl=${'v'.repeat(LIMITS.value + 1)}`)).toMatchObject({ ok: false, code: 'over_bounds', reason: expect.stringMatching(/^dl:/) as unknown });
  });

  it('maps PageView to page and anything else to track with the event name', () => {
    const page = parse('id=1&ev=PageView');
    expect(page.ok && page.event).toMatchObject({ type: 'page' });
    expect(page.ok && 'event' in page.event).toBe(false);
    expect(parse('id=1&ev=MyCustom')).toMatchObject({ ok: true, event: { type: 'track', event: 'MyCustom' } });
  });

  it('uses eid as messageId, a random id otherwise', () => {
    expect(parse('id=1&ev=X&eid=abc.123')).toMatchObject({ event: { messageId: 'abc.123' } });
    const a = parse('id=1&ev=X');
    const b = parse('id=1&ev=X&eid=');
    expect(a.ok && b.ok && a.event.messageId !== b.event.messageId).toBe(true);
  });

  it('converts numeric fields only when plainly decimal and parses JSON list fields when valid', () => {
    const r = parse('id=1&ev=X&cd[value]=10&cd[num_items]=abc&cd[predicted_ltv]=-2.5&cd[zip]=01234&cd[contents]=not-json&cd[content_ids]=["a","b"]&cd[value2]=3');
    expect(r.ok && r.event.properties).toStrictEqual({
      value: 10, num_items: 'abc', predicted_ltv: -2.5, zip: '01234', contents: 'not-json', content_ids: ['a', 'b'], value2: '3',
    });
  });

  it('keeps only SHA-256 hashed user data, lower-cased, never re-hashed, under context.meta and never as traits', () => {
    const r = parse(`id=1&ev=X&ud[em]=${HASH.toUpperCase()}&ud[external_id]=user-42&ud[ph]=${HASH.slice(1)}`);
    expect(r.ok && r.event.context.meta).toStrictEqual({ pixelId: '1', userData: { em: HASH } });
    expect(r.ok && 'traits' in r.event.context).toBe(false);
    expect(r.ok && r.event.traits).toStrictEqual({});
    const none = parse('id=1&ev=X&ud[em]=a@b.c');
    expect(none.ok && none.event.context.meta).toStrictEqual({ pixelId: '1' });
  });

  it('derives Segment products from contents, keeping contents as sent', () => {
    const contents = [{ id: 'A', quantity: 2, item_price: 9.5 }, { id: 7 }, { quantity: 1 }, 'x', null];
    const r = parse(`id=1&ev=X&cd[contents]=${encodeURIComponent(JSON.stringify(contents))}`);
    expect(r.ok && r.event.properties).toStrictEqual({
      contents,
      products: [{ product_id: 'A', quantity: 2, price: 9.5 }, { product_id: '7' }],
    });
    const own = parse(`id=1&ev=X&cd[contents]=${encodeURIComponent('[{"id":"A"}]')}&cd[products]=mine`);
    expect(own.ok && own.event.properties.products).toBe('mine');
    expect(parse('id=1&ev=X&cd[contents]=[{"quantity":1}]')).toMatchObject({ event: { properties: { contents: [{ quantity: 1 }] } } });
    const none = parse('id=1&ev=X&cd[contents]=[]');
    expect(none.ok && 'products' in none.event.properties).toBe(false);
  });

  it('ignores __proto__ keys and reads repeated parameters at their first occurrence', () => {
    const r = parse('id=1&ev=First&ev=Second&cd[__proto__]=x&cd[a]=1&cd[a]=2');
    expect(r.ok && r.event.event).toBe('First');
    expect(r.ok && r.event.properties).toStrictEqual({ a: '1' });
    expect(r.ok && Object.getPrototypeOf(r.event.properties)).toBe(Object.prototype);
  });

  it('takes ts only within a day of reception', () => {
    const at = (ts: string) => {
      const r = parse(`id=1&ev=X&ts=${ts}`);
      return r.ok ? r.event.timestamp : undefined;
    };
    expect(at(String(now.getTime() - 86_400_000))).toBe('2026-02-28T12:00:00.000Z');
    expect(at(String(now.getTime() + 86_400_001))).toBe(now.toISOString());
    expect(at('1772366398.5')).toBe(now.toISOString());
    expect(at('-5')).toBe(now.toISOString());
  });

  it('keeps a non-http dl as url without path; an invalid fbp is not the anonymousId', () => {
    const r = parse('id=1&ev=X&dl=not a url&fbp=fb 1 2');
    expect(r.ok && r.event.context.page).toStrictEqual({ url: 'not a url' });
    expect(r.ok && r.event.anonymousId).toBeUndefined();
    expect(r.ok && r.event.context.meta).toStrictEqual({ pixelId: '1', fbp: 'fb 1 2' });
  });

  it('never throws on arbitrary parameters', () => {
    const key = fc.oneof(
      fc.constantFrom('id', 'ev', 'eid', 'dl', 'rl', 'ts', 'fbp', 'fbc', 'v', 'cd[value]', 'cd[contents]', 'cd[content_ids]', 'ud[em]', 'cd[__proto__]', 'ud[constructor]'),
      fc.string({ maxLength: 20 }),
      fc.string({ maxLength: 10 }).map((s) => `cd[${s}]`),
    );
    const value = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('1234', '', '1e999', '[1,{"a":null}]', 'null', HASH, '1772366398500'), fc.json());
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 30 }), fc.boolean(), (pairs, withRequired) => {
        const params = new URLSearchParams(pairs);
        if (withRequired) {
          params.set('id', '42');
          params.set('ev', 'Evt');
        }
        const r = parsePixelHit(params, facts);
        if (withRequired) expect(r.ok).toBe(true);
        if (r.ok) expect(() => JSON.stringify(r.event)).not.toThrow();
      }),
      { seed: 20260301, numRuns: 500 },
    );
  });
});
