/**
 * Property: whatever the upstream does (consent, "no consent", 429, 5xx, timeout, reset,
 * malformed body) and however lookups, invalidations and time interleave, the client never
 * returns (or holds in its cache) an answer that is not exactly what the upstream said in a 200
 * for that visitor since the last local consent change. In particular no category is ever
 * `granted` unless a 200 for that visitor said `true` for every upstream name mapped to it.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createVerifyClient, isVerifyFailure, type VerifyClient, type VerifyResult } from './verify-client.ts';
import { FakeClock } from '../../lib/fake-clock.ts';
import { UPSTREAM_ORIGIN, baseOptions, flush, mockUpstream } from './test-helpers.ts';

const MAP = { marketing: 'advertising', ads: 'advertising', analytics: 'analytics', functional: 'functional' };
const UPSTREAM_NAMES = ['marketing', 'ads', 'analytics', 'functional', 'necessary'];
const VISITORS = ['v0', 'v1', 'v2'];

type Behaviour =
  | { kind: 'ok'; hasConsent: boolean; categories: Record<string, unknown> | null }
  | { kind: 'status'; status: 429 | 500 | 502 | 503 | 404; retryAfter?: string }
  | { kind: 'timeout' }
  | { kind: 'reset' }
  | { kind: 'malformed'; text: string };

const categoryValue = fc.constantFrom<unknown>(true, true, false, 'true', 1, null, {});
const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('ok' as const), hasConsent: fc.boolean(), categories: fc.option(fc.dictionary(fc.constantFrom(...UPSTREAM_NAMES), categoryValue), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('status' as const), status: fc.constantFrom(429 as const, 500 as const, 502 as const, 503 as const, 404 as const), retryAfter: fc.option(fc.constantFrom('0', '1', '30', 'garbage'), { nil: undefined }) }) },
  fc.constant({ kind: 'timeout' as const }),
  fc.constant({ kind: 'reset' as const }),
  fc.record({ kind: fc.constant('malformed' as const), text: fc.constantFrom('', 'nope', '{"hasConsent":"true","categories":{"marketing":true}}', '{"hasConsent":true,"categories":null}', '[true]') }),
);

type Op =
  | { op: 'lookup'; v: number; n: number; invalidateMidway: boolean }
  | { op: 'invalidate'; v: number }
  | { op: 'advance'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('lookup' as const), v: fc.nat(VISITORS.length - 1), n: fc.integer({ min: 1, max: 4 }), invalidateMidway: fc.boolean() }) },
  fc.record({ op: fc.constant('invalidate' as const), v: fc.nat(VISITORS.length - 1) }),
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(0, 10, 1_000, 30_000, 61_000) }) },
);

/** The reference reading of a 200 body: what the client may return, computed independently. */
function reference(b: Extract<Behaviour, { kind: 'ok' }>): Record<string, string> | undefined {
  if (b.categories === null) return b.hasConsent ? undefined : {};
  const out: Record<string, string> = {};
  for (const site of new Set(Object.values(MAP))) {
    const names = Object.keys(MAP).filter((n) => MAP[n as keyof typeof MAP] === site && n in b.categories!);
    if (names.length === 0) continue;
    out[site] = b.hasConsent && names.every((n) => b.categories![n] === true) ? 'granted' : 'denied';
  }
  return out;
}

describe('verify client property', () => {
  it('never yields an answer the upstream did not give in a 200 since the last invalidation', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(behaviour, { minLength: 1, maxLength: 40 }), fc.array(op, { minLength: 1, maxLength: 30 }), async (behaviours, ops) => {
        const agent = mockUpstream();
        const clock = new FakeClock();
        /**
         * Reference readings of the 200s served. Interceptors are consumed in order, one per
         * call, so the i-th behaviour answers the client's i-th call (`call`, 0-based).
         */
        const served: { v: string; call: number; categories: Record<string, string> | undefined }[] = [];
        const pool = agent.get(UPSTREAM_ORIGIN);
        for (const [call, b] of behaviours.entries()) {
          const i = pool.intercept({ path: () => true, method: 'GET' });
          switch (b.kind) {
            case 'ok':
              i.reply((opts) => {
                served.push({ v: new URL(opts.path, UPSTREAM_ORIGIN).searchParams.get('visitor_id') ?? '', call, categories: reference(b) });
                return { statusCode: 200, data: JSON.stringify({ hasConsent: b.hasConsent, categories: b.categories, consentedAt: null, geoCountry: null }) };
              });
              break;
            case 'status':
              i.reply(b.status, '{}', { headers: b.retryAfter === undefined ? {} : { 'retry-after': b.retryAfter } });
              break;
            case 'timeout':
              i.replyWithError(Object.assign(new Error('timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
              break;
            case 'reset':
              i.replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
              break;
            case 'malformed':
              i.reply(200, b.text);
              break;
          }
        }
        const client: VerifyClient = createVerifyClient(
          baseOptions({
            dispatcher: agent,
            clock,
            categoryMap: MAP,
            requestsPerMinute: 4,
            failureTtlMs: 500,
            breaker: { windowMs: 60_000, minRequests: 3, errorRatio: 0.5, openMs: 20_000 },
            rateLimitFallbackMs: 5_000,
          }),
        );
        /**
         * Calls started before each visitor's last invalidation: a call numbered below this was
         * on the wire (or done) when the local consent changed, so its answer must not surface.
         */
        const mark = new Map<string, number>();
        const invalidate = (v: string) => {
          client.invalidate(v);
          mark.set(v, client.stats().calls);
        };

        /** `since0`: the visitor's mark when the result was delivered. */
        const check = (v: string, r: VerifyResult | undefined, since0 = mark.get(v) ?? 0) => {
          if (r === undefined || isVerifyFailure(r)) return;
          const since = served.filter((s) => s.call >= since0 && s.v === v && s.categories !== undefined);
          const matches = since.some((s) => isDeepStrictEqual(s.categories, { ...r.categories }) && (r.found || Object.keys(s.categories!).length === 0));
          expect(matches, `answer ${JSON.stringify(r)} for ${v} not backed by a 200 since the last invalidation`).toBe(true);
        };

        try {
          for (const o of ops) {
            if (o.op === 'advance') {
              clock.advance(o.ms);
            } else if (o.op === 'invalidate') {
              invalidate(VISITORS[o.v]!);
            } else {
              const v = VISITORS[o.v]!;
              // Each result is judged against the invalidations made before it was delivered.
              const lookup = () => client.lookup(v).then((r) => ({ r, since: mark.get(v) ?? 0 }));
              const pending = Array.from({ length: o.n }, lookup);
              if (o.invalidateMidway) {
                await flush(o.n % 2);
                invalidate(v);
                pending.push(lookup());
              }
              for (const { r, since } of await Promise.all(pending)) check(v, r, since);
            }
            for (const v of VISITORS) check(v, client.cached(v));
            // The budget is never exceeded, whatever happened.
            expect(client.stats().budgetUsed).toBeLessThanOrEqual(4);
          }
        } finally {
          await client.close();
          await agent.close();
        }
      }),
      { seed: 424242, numRuns: 150 },
    );
  });
});
