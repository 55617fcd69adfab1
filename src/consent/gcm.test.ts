import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GCM_MAX_LENGTH, GCM_SIGNALS, decodeGcd, decodeGcs, gcmState } from './gcm.ts';
import type { GcdSignal, GcmSignal, GcmValue } from './gcm.ts';

// Expected meanings, written out independently of the module's table so a typo there fails here.
// Source: https://www.simoahava.com/analytics/consent-mode-v2-google-tags/ (gcd letter table).
type D = 'granted' | 'denied';
const LETTERS: Record<string, { default?: D; update?: D; value: GcmValue }> = {
  l: { value: 'unset' },
  p: { default: 'denied', value: 'denied' },
  q: { default: 'denied', update: 'denied', value: 'denied' },
  t: { default: 'granted', value: 'granted' },
  r: { default: 'denied', update: 'granted', value: 'granted' },
  m: { update: 'denied', value: 'denied' },
  n: { update: 'granted', value: 'granted' },
  u: { default: 'granted', update: 'denied', value: 'denied' },
  v: { default: 'granted', update: 'granted', value: 'granted' },
};
const GRANTED_LETTERS = new Set(['t', 'r', 'n', 'v']);
const DENIED_LETTERS = new Set(['p', 'q', 'm', 'u']);
const POSITION: Record<GcmSignal, number> = { ad_storage: 2, analytics_storage: 4, ad_user_data: 6, ad_personalization: 8 };

function expectedSignal(letter: string): GcdSignal {
  const m = LETTERS[letter];
  if (m === undefined) return { value: 'unset', letter };
  const out: GcdSignal = { value: m.value, letter };
  if (m.default) out.default = m.default;
  if (m.update) out.update = m.update;
  return out;
}

function values(gcd: unknown): GcmValue[] {
  const d = decodeGcd(gcd);
  return GCM_SIGNALS.map((s) => d[s].value);
}

const ALL_UNSET = { ad_storage: { value: 'unset' }, analytics_storage: { value: 'unset' }, ad_user_data: { value: 'unset' }, ad_personalization: { value: 'unset' } };

describe('decodeGcs', () => {
  // https://adriennevermorel.com/notes/consent-mode-debugging-network-parameters/ (G1xy table)
  it.each([
    ['G100', 'denied', 'denied'],
    ['G111', 'granted', 'granted'],
    ['G101', 'denied', 'granted'],
    ['G110', 'granted', 'denied'],
  ])('%s → ad_storage %s, analytics_storage %s', (gcs, ad, analytics) => {
    expect(decodeGcs(gcs)).toEqual({ ad_storage: ad, analytics_storage: analytics });
  });

  it.each<[string, unknown]>([
    ['G1 alone', 'G1'],
    ['G12x', 'G12x'],
    ['X111', 'X111'],
    ['empty', ''],
    ['lowercase g', 'g111'],
    ['wrong version', 'G011'],
    ['digit other than 0/1', 'G112'],
    ['extra character', 'G1111'],
    ['dash placeholders', 'G1--'],
    ['leading space', ' G111'],
    ['trailing space', 'G111 '],
    ['a number', 111],
    ['NaN', Number.NaN],
    ['null', null],
    ['undefined', undefined],
    ['a boolean', true],
    ['an object', { gcs: 'G111' }],
    ['an array', ['G111']],
    ['a String object', new String('G111')],
    ['an object whose toString says G111', { toString: () => 'G111' }],
    ['a very long string', 'G111'.repeat(10_000)],
  ])('%s → undefined', (_name, input) => {
    expect(decodeGcs(input)).toBeUndefined();
  });
});

describe('decodeGcd', () => {
  // One row per documented example. Simo Ahava / Baersch table (link above) for the 11… rows;
  // 13… rows are the shapes reported in https://community.shopify.com/t/consent-mode-v2-for-shopify-with-the-right-gcd-parameters/400762
  // and the task brief; 11p1t1p1t5 from https://www.perspection.app/library/google-consent-mode-v2-gcs-gcd-parameters-decoded
  it.each<[string, GcmValue[]]>([
    ['11l1p1l1l5', ['unset', 'denied', 'unset', 'unset']],
    ['11p1p1p1p5', ['denied', 'denied', 'denied', 'denied']],
    ['11p1q1p1p5', ['denied', 'denied', 'denied', 'denied']],
    ['11t1t1t1t5', ['granted', 'granted', 'granted', 'granted']],
    ['11r1r1r1r5', ['granted', 'granted', 'granted', 'granted']],
    ['11p1m1p1p5', ['denied', 'denied', 'denied', 'denied']],
    ['11n1n1n1n5', ['granted', 'granted', 'granted', 'granted']],
    ['11u1u1u1u5', ['denied', 'denied', 'denied', 'denied']],
    ['11v1v1v1v5', ['granted', 'granted', 'granted', 'granted']],
    ['11p1t1p1t5', ['denied', 'granted', 'denied', 'granted']],
    ['13l3l3l3l1', ['unset', 'unset', 'unset', 'unset']],
    ['13r3r3r2r5', ['granted', 'granted', 'granted', 'granted']],
    ['13r3r3r2r5l1', ['granted', 'granted', 'granted', 'granted']],
    ['13p3p3p2p5l1', ['denied', 'denied', 'denied', 'denied']],
    ['13t3t3t2t5l1', ['granted', 'granted', 'granted', 'granted']],
    ['13r3r3r2r3l1', ['granted', 'granted', 'granted', 'granted']],
    ['13r3r3r2r6l1', ['granted', 'granted', 'granted', 'granted']],
  ])('%s → %j', (gcd, expected) => {
    expect(values(gcd)).toEqual(expected);
  });

  it('keeps default, update and letter for a documented string', () => {
    expect(decodeGcd('11p1q1r1u5')).toEqual({
      ad_storage: { value: 'denied', default: 'denied', letter: 'p' },
      analytics_storage: { value: 'denied', default: 'denied', update: 'denied', letter: 'q' },
      ad_user_data: { value: 'granted', default: 'denied', update: 'granted', letter: 'r' },
      ad_personalization: { value: 'denied', default: 'granted', update: 'denied', letter: 'u' },
    });
  });

  // Every letter state in each of the four positions, the other three left `l` (not set).
  const everyLetterEverywhere = GCM_SIGNALS.flatMap((signal) =>
    Object.keys(LETTERS).map((letter): [GcmSignal, string, string] => {
      const chars = ['1', '1', 'l', '1', 'l', '1', 'l', '1', 'l', '5'];
      chars[POSITION[signal]] = letter;
      return [signal, letter, chars.join('')];
    }),
  );
  it.each(everyLetterEverywhere)('%s letter %s (%s)', (signal, letter, gcd) => {
    const d = decodeGcd(gcd);
    expect(d[signal]).toEqual(expectedSignal(letter));
    for (const other of GCM_SIGNALS) if (other !== signal) expect(d[other]).toEqual({ value: 'unset', letter: 'l' });
  });

  it('lets the update win over the default in both directions', () => {
    expect(decodeGcd('11r1u1l1l5').ad_storage).toMatchObject({ default: 'denied', update: 'granted', value: 'granted' });
    expect(decodeGcd('11r1u1l1l5').analytics_storage).toMatchObject({ default: 'granted', update: 'denied', value: 'denied' });
  });

  // Undocumented letters (including `e`, uppercase, digits) say nothing: unset for that signal only.
  it.each(['e', 'a', 'o', 's', 'w', 'z', 'L', 'P', 'R', 'T', 'V', '0', '9'])('unknown letter %s → unset for its signal only', (letter) => {
    const d = decodeGcd(`11${letter}1t1p1r5`);
    expect(d.ad_storage).toEqual({ value: 'unset', letter });
    expect(d.analytics_storage.value).toBe('granted');
    expect(d.ad_user_data.value).toBe('denied');
    expect(d.ad_personalization.value).toBe('granted');
  });

  it.each<[string, unknown]>([
    ['empty', ''],
    ['too short', '11t1t1t1t'],
    ['one leading digit', '1t1t1t1t5'],
    ['letter in a digit slot', 'x1t1t1t1t5'],
    ['non-digit separator', '11t-t1t1t5'],
    ['non-digit terminator', '11t1t1t1tx'],
    ['symbol in a letter slot', '11*1t1t1t5'],
    ['trailing space', '11t1t1t1t5 '],
    ['another parameter glued on', '11t1t1t1t5&gcs=G111'],
    ['non-ASCII letter', '11ṫ1t1t1t5'],
    ['NUL in the suffix', '11t1t1t1t5\u0000'],
    ['too long', `11t1t1t1t5${'1'.repeat(GCM_MAX_LENGTH)}`],
    ['a gcs value', 'G111'],
    ['a number', 11111111115],
    ['null', null],
    ['undefined', undefined],
    ['an object', { gcd: '11t1t1t1t5' }],
    ['an array', ['11t1t1t1t5']],
    ['a String object', new String('11t1t1t1t5')],
    ['a very long string', '11t1t1t1t5'.repeat(10_000)],
  ])('malformed (%s) → every signal unset, no letters', (_name, input) => {
    expect(decodeGcd(input)).toEqual(ALL_UNSET);
  });

  it('accepts a suffix up to the length bound and no further', () => {
    const atBound = `11t1t1t1t5${'l1'.repeat((GCM_MAX_LENGTH - 10) / 2)}`;
    expect(atBound).toHaveLength(GCM_MAX_LENGTH);
    expect(values(atBound)).toEqual(['granted', 'granted', 'granted', 'granted']);
    expect(values(`${atBound}1`)).toEqual(['unset', 'unset', 'unset', 'unset']);
  });
});

describe('gcmState', () => {
  it.each<[string, { gcs?: unknown; gcd?: unknown }, Record<GcmSignal, GcmValue>]>([
    ['nothing', {}, { ad_storage: 'unset', analytics_storage: 'unset', ad_user_data: 'unset', ad_personalization: 'unset' }],
    ['gcs only fills the two storage signals', { gcs: 'G110' }, { ad_storage: 'granted', analytics_storage: 'denied', ad_user_data: 'unset', ad_personalization: 'unset' }],
    ['gcd only', { gcd: '11r1p1m1n5' }, { ad_storage: 'granted', analytics_storage: 'denied', ad_user_data: 'denied', ad_personalization: 'granted' }],
    ['agreeing', { gcs: 'G111', gcd: '13r3r3r2r5l1' }, { ad_storage: 'granted', analytics_storage: 'granted', ad_user_data: 'granted', ad_personalization: 'granted' }],
    ['gcd unset (l) → gcs fills', { gcs: 'G101', gcd: '11l1l1p1p5' }, { ad_storage: 'denied', analytics_storage: 'granted', ad_user_data: 'denied', ad_personalization: 'denied' }],
    ['gcd unknown letter → gcs fills', { gcs: 'G111', gcd: '11e1e1e1e5' }, { ad_storage: 'granted', analytics_storage: 'granted', ad_user_data: 'unset', ad_personalization: 'unset' }],
    ['gcd malformed → gcs fills', { gcs: 'G110', gcd: '11t1t1t1t' }, { ad_storage: 'granted', analytics_storage: 'denied', ad_user_data: 'unset', ad_personalization: 'unset' }],
    ['gcs malformed → gcd alone', { gcs: 'G1', gcd: '11t1p1t1p5' }, { ad_storage: 'granted', analytics_storage: 'denied', ad_user_data: 'granted', ad_personalization: 'denied' }],
    ['conflict: gcd granted, gcs denied → denied', { gcs: 'G100', gcd: '11v1r1t1n5' }, { ad_storage: 'denied', analytics_storage: 'denied', ad_user_data: 'granted', ad_personalization: 'granted' }],
    ['conflict: gcd denied, gcs granted → denied', { gcs: 'G111', gcd: '11u1q1v1v5' }, { ad_storage: 'denied', analytics_storage: 'denied', ad_user_data: 'granted', ad_personalization: 'granted' }],
    ['mixed', { gcs: 'G101', gcd: '11t1t1l1p5' }, { ad_storage: 'denied', analytics_storage: 'granted', ad_user_data: 'unset', ad_personalization: 'denied' }],
    ['non-string parameters', { gcs: 111, gcd: { a: 1 } }, { ad_storage: 'unset', analytics_storage: 'unset', ad_user_data: 'unset', ad_personalization: 'unset' }],
  ])('%s', (_name, params, expected) => {
    expect(gcmState(params)).toEqual(expected);
  });

  it('never throws on hostile params', () => {
    const throwing = Object.defineProperty({}, 'gcd', {
      get() {
        throw new Error('boom');
      },
    });
    expect(gcmState(throwing as { gcd?: unknown }).ad_user_data).toBe('unset');
    expect(gcmState(null as unknown as { gcs?: unknown }).ad_storage).toBe('unset');
    expect(gcmState('G111' as unknown as { gcs?: unknown }).ad_storage).toBe('unset');
  });
});

describe('properties', () => {
  const SEED = 20260412;
  const alnum = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const anyChar = fc.oneof(fc.constantFrom(...alnum, '-', '_', ' ', '&', '=', '\u0000', 'ṫ'), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }));
  const digit = fc.constantFrom(...'0123456789');
  // Weighted towards valid characters so that a good share of samples is well formed and the
  // decoding paths (not only the rejection paths) are exercised.
  const mostly = <T,>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 9 }, { arbitrary: bad, weight: 1 });
  const letter = mostly(fc.constantFrom(...Object.keys(LETTERS), ...alnum), anyChar);
  const suffix = fc.oneof(fc.constant(''), fc.string({ maxLength: 8, unit: mostly(fc.constantFrom(...alnum), anyChar) }));
  // Strings near the gcd skeleton `DDxDxDxDxD…`.
  const gcdLike = fc
    .tuple(digit, mostly(digit, anyChar), letter, digit, letter, mostly(digit, anyChar), letter, digit, letter, mostly(digit, anyChar), suffix)
    .map((parts) => parts.join(''));
  // Strings near the gcs shape `G1xy`.
  const gcsLike = fc
    .tuple(mostly(fc.constant('G'), fc.constantFrom('g', 'X')), mostly(fc.constant('1'), fc.constantFrom('0', 'G')), mostly(fc.constantFrom('0', '1'), anyChar), mostly(fc.constantFrom('0', '1'), anyChar), mostly(fc.constant(''), fc.string({ maxLength: 2 })))
    .map((parts) => parts.join(''));

  it('generators reach the well-formed paths (otherwise the properties below prove little)', () => {
    const gcds = fc.sample(gcdLike, { seed: SEED, numRuns: 1000 });
    const gcss = fc.sample(gcsLike, { seed: SEED, numRuns: 1000 });
    expect(gcds.filter((g) => decodeGcd(g).ad_storage.letter !== undefined).length).toBeGreaterThan(200);
    expect(gcds.filter((g) => GCM_SIGNALS.some((s) => decodeGcd(g)[s].value === 'granted')).length).toBeGreaterThan(100);
    expect(gcss.filter((g) => decodeGcs(g) !== undefined).length).toBeGreaterThan(200);
  });

  it('never throws on anything', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (a, b) => {
        decodeGcs(a);
        decodeGcd(a);
        gcmState({ gcs: a, gcd: b });
        gcmState(a as { gcs?: unknown });
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('decodeGcd only grants (or denies) for a documented letter at that signal’s position', () => {
    fc.assert(
      fc.property(fc.oneof(gcdLike, fc.string({ maxLength: 80 }), fc.anything()), (input) => {
        const d = decodeGcd(input);
        for (const signal of GCM_SIGNALS) {
          const { value } = d[signal];
          if (value === 'unset') continue;
          expect(typeof input).toBe('string');
          const at = (input as string)[POSITION[signal]] ?? '';
          expect(d[signal].letter).toBe(at);
          expect((value === 'granted' ? GRANTED_LETTERS : DENIED_LETTERS).has(at)).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  it('decodeGcs answers exactly for the documented shape G1[01][01]', () => {
    fc.assert(
      fc.property(fc.oneof(gcsLike, fc.string({ maxLength: 8 }), fc.anything()), (input) => {
        const got = decodeGcs(input);
        const shaped = typeof input === 'string' && /^G1[01][01]$/.test(input);
        expect(got !== undefined).toBe(shaped);
        if (got !== undefined && typeof input === 'string') {
          expect(got.ad_storage).toBe(input[2] === '1' ? 'granted' : 'denied');
          expect(got.analytics_storage).toBe(input[3] === '1' ? 'granted' : 'denied');
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  it('gcmState grants only when a source grants and none denies', () => {
    fc.assert(
      fc.property(fc.oneof(gcsLike, fc.constantFrom('G100', 'G101', 'G110', 'G111')), gcdLike, (gcs, gcd) => {
        const state = gcmState({ gcs, gcd });
        const fromGcd = decodeGcd(gcd);
        const fromGcs = decodeGcs(gcs);
        for (const signal of GCM_SIGNALS) {
          const a = fromGcd[signal].value;
          const b = signal === 'ad_storage' || signal === 'analytics_storage' ? (fromGcs?.[signal] ?? 'unset') : 'unset';
          if (a === 'denied' || b === 'denied') expect(state[signal]).toBe('denied');
          else if (a === 'granted' || b === 'granted') expect(state[signal]).toBe('granted');
          else expect(state[signal]).toBe('unset');
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
