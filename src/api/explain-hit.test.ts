import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TagwardenError } from '../errors.ts';
import { clientOf, rawHitOf, readRawHit, type RawHitLimits } from './explain-hit.ts';

const limits: RawHitLimits = { maxEventBytes: 32_768, maxBatchBytes: 524_288, maxBatchEvents: 100, maxHeaderBytes: 16_384 };
const facts = { ip: '203.0.113.9', now: new Date('2026-03-01T12:00:00.000Z') };

/** Runs the envelope check and the read; resolves with what came out or the error thrown. */
async function attempt(input: unknown): Promise<unknown> {
  try {
    return await readRawHit(rawHitOf(input, limits), facts, limits);
  } catch (e) {
    return e;
  }
}

describe('rawHitOf', () => {
  it('normalises the envelope: method default, query from the path, header names lower-cased', () => {
    expect(rawHitOf({ path: '/g/collect?v=2&en=x', headers: { 'User-Agent': 'UA' } }, limits)).toEqual({
      method: 'GET',
      path: '/g/collect',
      query: 'v=2&en=x',
      headers: { 'user-agent': 'UA' },
      body: undefined,
    });
    expect(rawHitOf({ method: 'post', path: '/tr', query: '?id=1', body: 'ev=x' }, limits)).toMatchObject({ method: 'POST', query: 'id=1', body: 'ev=x' });
  });

  it('refuses the same header given twice in different cases', () => {
    expect(() => rawHitOf({ path: '/tr', headers: { Cookie: 'a=1', cookie: 'b=2' } }, limits)).toThrow('hit.headers.cookie: given twice');
  });

  it('knows every client route and nothing else', () => {
    expect(['/g/collect', '/tr', '/tr/', '/v1/t', '/v1/track', '/v1/batch', '/v1/b'].map(clientOf)).toEqual(['ga4', 'meta-pixel', 'meta-pixel', 'segment', 'segment', 'segment', 'segment']);
    for (const path of ['/v1/', '/v1/constructor', '/v1/__proto__', '/g/collect/', '/tr/x', '/']) expect(() => clientOf(path)).toThrow(/is not a client route/);
  });
});

describe('raw hits: property', () => {
  const paths = fc.constantFrom('/g/collect', '/tr', '/v1/track', '/v1/batch', '/v1/p', '/nope', '');
  const hit = fc.record(
    {
      method: fc.oneof(fc.constantFrom('GET', 'POST', 'get', 'PUT'), fc.anything()),
      path: fc.oneof(paths, fc.string(), paths.map((p) => `${p}?v=2&tid=G-1&en=x&id=1&ev=PageView`)),
      query: fc.oneof(fc.string(), fc.constant('v=2&tid=G-1&cid=1.2&en=page_view'), fc.anything()),
      headers: fc.oneof(fc.dictionary(fc.string({ maxLength: 20 }), fc.oneof(fc.string(), fc.anything()), { maxKeys: 5 }), fc.anything()),
      body: fc.oneof(fc.string(), fc.json(), fc.jsonValue(), fc.constant('en=a\nen=b'), fc.constant({ batch: [{ type: 'track', event: 'x', anonymousId: 'a' }, 1] })),
    },
    { requiredKeys: [] },
  );

  it('either reads the hit or refuses it with a Tagwarden error, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(hit, fc.anything()), async (input) => {
        const out = await attempt(input);
        if (out instanceof Error) {
          expect(out).toBeInstanceOf(TagwardenError);
          expect([400, 413, 415]).toContain((out as TagwardenError).status);
          return;
        }
        const { hits, rejected } = out as { hits: { index: number }[]; rejected: { index: number }[] };
        // Every hit of the request is either read or refused, once.
        const indexes = [...hits, ...rejected].map((h) => h.index);
        expect(new Set(indexes).size).toBe(indexes.length);
      }),
      { seed: 20261201, numRuns: 400 },
    );
  });

  it('regression: a Segment body nested too deeply to serialise again was a 500', async () => {
    let deep: unknown = {};
    for (let i = 0; i < 200_000; i++) deep = { d: deep };
    const out = await attempt({ method: 'POST', path: '/v1/t', body: deep });
    expect(out).toBeInstanceOf(TagwardenError);
    expect(out).toMatchObject({ status: 400, message: expect.stringMatching(/nested too deeply/) as unknown });
  });
});
