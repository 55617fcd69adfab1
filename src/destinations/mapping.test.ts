import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  applyTransform,
  compileMapping,
  HASH_KINDS,
  hashValue,
  MAX_ARRAY_ITEMS,
  MAX_LOOKUP_ENTRIES,
  MAX_LOOKUP_KEY_LENGTH,
  MAX_MERGE_OBJECTS,
  MAX_SCALAR_FIELDS,
  normalizeForHash,
  parsePath,
  truncateIp,
  type HashKind,
  type MappingIssue,
} from './mapping.ts';

const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const SHA_RE = /^[0-9a-fA-F]{64}$/;

/** Compile (expecting no issues) and evaluate against `root`; settings are declared from `settings`. */
function run(mapping: unknown, root: unknown, settings: Record<string, unknown> = {}): unknown {
  const compiled = compileMapping(mapping, { settings: Object.keys(settings) });
  expect(compiled.issues).toEqual([]);
  return compiled.evaluate(root, settings);
}

function issues(mapping: unknown, settings: string[] = []): MappingIssue[] {
  return [...compileMapping(mapping, { settings, at: 'm' }).issues];
}

const event = {
  messageId: 'm1',
  type: 'track',
  event: 'Signed Up',
  properties: { a: { b: 1 }, list: [{ id: 'x' }, { id: 'y' }], empty: '', nil: null, zero: 0, no: false, 'odd key': 'odd' },
  context: { page: { url: 'https://a.example/p?q=1' } },
};

describe('literals', () => {
  test.each([
    ['string', 'hello'],
    ['number', 42.5],
    ['boolean', false],
    ['null', null],
    ['array', [1, 'two', null, [3]]],
    ['object', { a: 1, b: { c: [true] } }],
  ])('%s maps to itself', (_label, value) => {
    expect(run(value, event)).toEqual(value);
  });

  test('@literal passes @ keys through unevaluated', () => {
    expect(run({ '@literal': { '@context': 'https://schema.org', x: { '@path': '$.a' } } }, event)).toEqual({
      '@context': 'https://schema.org',
      x: { '@path': '$.a' },
    });
  });

  test('absent values are left out of objects and arrays', () => {
    expect(run({ a: { '@path': '$.missing' }, b: [{ '@path': '$.missing' }, 1], c: 2 }, event)).toEqual({ b: [1], c: 2 });
  });

  test('constant output is frozen so a render cannot alter the template', () => {
    const out = run({ a: { b: 1 } }, event) as { a: { b: number } };
    expect(Object.isFrozen(out.a)).toBe(true);
  });
});

describe('directive syntax errors are found at compile time, all at once, with their path', () => {
  test('unknown directive', () => {
    expect(issues({ params: { value: { '@foo': 1 } } })).toEqual([
      { path: 'm.params.value', message: expect.stringContaining('unknown directive @foo') },
    ]);
  });

  test('a directive with sibling keys', () => {
    expect(issues({ '@path': '$.a', other: 1 })[0]?.message).toMatch(/only key/);
  });

  test('__proto__ as an output key', () => {
    expect(issues(JSON.parse('{"__proto__": {"polluted": true}}'))).toEqual([{ path: 'm.__proto__', message: expect.stringMatching(/not allowed/) }]);
  });

  test('every problem is reported, not just the first', () => {
    const found = issues({
      a: { '@foo': 1 },
      b: { '@path': 'no-dollar' },
      c: { '@setting': 'undeclared' },
      d: { '@transform': { fn: 'explode', value: 1 } },
      e: { '@hash': { kind: 'email' } },
    });
    expect(found.map((i) => i.path)).toEqual(['m.a', 'm.b.@path', 'm.c.@setting', 'm.d.@transform.fn', 'm.e.@hash']);
  });

  test('mapping depth is bounded', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { x: deep };
    expect(issues(deep)[0]?.message).toMatch(/nested deeper/);
  });
});

describe('@path', () => {
  test.each([
    ['$.properties.a.b', 1],
    ['$.properties.list[1].id', 'y'],
    ['$.properties["odd key"]', 'odd'],
    ["$.properties['odd key']", 'odd'],
    ['$.properties.zero', 0],
    ['$.properties.no', false],
    ['$$.event', 'Signed Up'],
  ])('%s', (path, expected) => {
    expect(run({ '@path': path }, event)).toEqual(expected);
  });

  test.each([
    ['$.properties.missing'],
    ['$.properties.empty'],
    ['$.properties.nil'],
    ['$.properties.list[5]'],
    ['$.properties.list.length'],
    ['$.properties.a[0]'],
    ['$.messageId.length'],
    ['$.toString'],
    ['$.properties.hasOwnProperty'],
  ])('%s is absent', (path) => {
    expect(run({ '@path': path }, event)).toBeUndefined();
  });

  test('$ alone is the event itself (without settings)', () => {
    expect(run({ '@path': '$' }, event, { k: 'v' })).toBe(event);
  });

  test('fallbacks: the first present (not missing, null or "") wins', () => {
    expect(run({ '@path': ['$.properties.missing', '$.properties.nil', '$.properties.empty', '$.properties.zero'] }, event)).toBe(0);
    expect(run({ '@path': ['$.properties.missing', '$.nope'] }, event)).toBeUndefined();
  });

  test('$.settings.<name> reads a declared setting', () => {
    expect(run({ '@path': '$.settings.pixelId' }, event, { pixelId: '123' })).toBe('123');
    expect(issues({ '@path': '$.settings.nope' })[0]?.message).toMatch(/undeclared setting "nope"/);
  });

  test.each([
    ['properties.a', /must start with \$/],
    ['$.__proto__.x', /not allowed/],
    ['$.a.constructor', /not allowed/],
    ['$["prototype"]', /not allowed/],
    ['$.a..b', /expected a name/],
    ['$[x]', /expected \[index\]/],
    ['$.a b', /unexpected/],
    ['$["unterminated', /unterminated/],
    [`$${'.a'.repeat(33)}`, /deeper than 32/],
  ])('%s is rejected', (path, message) => {
    const result = parsePath(path);
    expect('error' in result && result.error).toMatch(message);
  });

  test('a path list must be non-empty strings', () => {
    expect(issues({ '@path': [] })[0]?.message).toMatch(/list of 1\.\./);
    expect(issues({ '@path': ['$.a', 3] })).toEqual([{ path: 'm.@path[1]', message: 'expected a path string' }]);
  });

  test('never throws on arbitrary JSON input', () => {
    const segment = fc.oneof(fc.constantFrom('a', 'b', '0', 'length', 'settings', 'x-y'), fc.nat({ max: 4 }));
    const pathArb = fc.array(segment, { maxLength: 6 }).map((segs) => '$' + segs.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join(''));
    fc.assert(
      fc.property(pathArb, fc.jsonValue(), (path, root) => {
        const compiled = compileMapping({ out: { '@path': [path, '$$'] } }, { settings: ['a'] });
        expect(() => compiled.evaluate(root, { a: 1 })).not.toThrow();
      }),
    );
  });

  test('compiling arbitrary strings as paths never throws', () => {
    fc.assert(
      fc.property(fc.string(), fc.jsonValue(), (path, root) => {
        const compiled = compileMapping({ '@path': path });
        expect(() => compiled.evaluate(root)).not.toThrow();
      }),
    );
  });
});

describe('@setting', () => {
  test('reads a declared setting; unset or empty is absent', () => {
    expect(run({ '@setting': 'id' }, event, { id: 'abc' })).toBe('abc');
    expect(run({ x: { '@setting': 'id' } }, event, { id: '' })).toEqual({});
    const compiled = compileMapping({ x: { '@setting': 'id' } }, { settings: ['id'] });
    expect(compiled.evaluate(event, {})).toEqual({});
  });

  test('an undeclared setting is a compile error', () => {
    expect(issues({ '@setting': 'missing' }, ['other'])).toEqual([{ path: 'm.@setting', message: 'undeclared setting "missing"' }]);
  });
});

describe('readsEvent: whether a mapping can differ from one event to the next', () => {
  const reads = (mapping: unknown): boolean => compileMapping(mapping, { settings: ['id', 'token'] }).readsEvent;

  test('literals and settings alone do not read the event', () => {
    expect(reads('https://vendor.example/collect')).toBe(false);
    expect(reads({ a: { '@setting': 'id' }, b: '{{settings.token}}', c: [1, { '@path': '$.settings.id' }] })).toBe(false);
    expect(reads({ '@transform': { fn: 'upper', value: { '@setting': 'id' } } })).toBe(false);
  });

  test('any path into the event reads it, however deep it sits', () => {
    expect(reads({ a: { b: [{ '@path': '$.userId' }] } })).toBe(true);
    expect(reads({ '@template': 'https://vendor.example/{{$.properties.region}}/collect' })).toBe(true);
    expect(reads({ '@if': { exists: { '@path': '$$.userId' }, then: 'a', else: 'b' } })).toBe(true);
    expect(reads({ '@arrayPath': ['$.properties.list', { id: { '@path': '$.id' } }] })).toBe(true);
  });

  test('a mapping that does not read the event evaluates the same for every event', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const m = compileMapping({ u: { '@template': 'https://x.example/{{settings.id}}' }, k: { '@setting': 'token' } }, { settings: ['id', 'token'] });
        expect(m.readsEvent).toBe(false);
        expect(m.evaluate(a, { id: 'i', token: 't' })).toEqual(m.evaluate(b, { id: 'i', token: 't' }));
      }),
    );
  });
});

describe('@template', () => {
  const settings = { pixelId: '12 34', token: 'a/b' };
  test.each([
    ['https://x.example/{{settings.pixelId}}/events', 'https://x.example/12%2034/events'],
    ['{{ settings.token }}:{{$.messageId}}', 'a%2Fb:m1'],
    ['n={{$.properties.zero}} b={{$.properties.no}}', 'n=0 b=false'],
    ['no placeholders', 'no placeholders'],
  ])('%s', (text, expected) => {
    expect(run({ '@template': text }, event, settings)).toBe(expected);
  });

  test('encode: false inserts values as they are', () => {
    expect(run({ '@template': { text: 'Bearer {{settings.token}}', encode: false } }, event, settings)).toBe('Bearer a/b');
  });

  test('any absent or non-scalar placeholder makes the whole template absent', () => {
    expect(run({ '@template': 'x/{{$.properties.missing}}' }, event)).toBeUndefined();
    expect(run({ '@template': 'x/{{$.properties.a}}' }, event)).toBeUndefined();
  });

  test.each([
    ['{{settings.nope}}', /undeclared setting/],
    ['{{event}}', /must be settings.<name> or a \$ path/],
    ['a {{ b', /unbalanced/],
    ['a }} b', /unbalanced/],
    ['{{$.__proto__}}', /not allowed/],
  ])('%s is a compile error', (text, message) => {
    expect(issues({ '@template': text }, ['pixelId'])[0]?.message).toMatch(message);
  });
});

describe('@if', () => {
  test.each([
    [{ exists: { '@path': '$.properties.a' }, then: 'yes', else: 'no' }, 'yes'],
    [{ exists: { '@path': '$.properties.empty' }, then: 'yes', else: 'no' }, 'no'],
    [{ exists: { '@path': '$.properties.zero' }, then: 'yes' }, 'yes'],
    [{ equals: [{ '@path': '$.type' }, 'track'], then: 'T', else: 'other' }, 'T'],
    [{ equals: [{ '@path': '$.type' }, 'page'], then: 'P', else: 'other' }, 'other'],
    [{ equals: [{ '@path': '$.properties.a' }, { b: 1 }], then: 'deep', else: 'no' }, 'deep'],
    [{ equals: [{ '@path': '$.nope' }, { '@path': '$.nope2' }], then: 'absent==absent', else: 'never' }, 'never'],
  ])('%j', (arg, expected) => {
    expect(run({ '@if': arg }, event)).toBe(expected);
  });

  test('no else and a false condition is absent', () => {
    expect(run({ x: { '@if': { exists: { '@path': '$.nope' }, then: 1 } } }, event)).toEqual({});
  });

  test.each([
    [{ then: 1 }, /exactly one condition/],
    [{ exists: 1, equals: [1, 1], then: 1 }, /exactly one condition/],
    [{ exists: 1 }, /missing "then"/],
    [{ exists: 1, then: 1, otherwise: 2 }, /unknown key "otherwise"/],
    [{ equals: [1], then: 1 }, /\[mapping, mapping\]/],
    ['x', /expected an object/],
  ])('%j is a compile error', (arg, message) => {
    expect(issues({ '@if': arg })[0]?.message).toMatch(message);
  });
});

describe('@arrayPath', () => {
  test('maps each element; $ is the element, $$ the event', () => {
    expect(run({ '@arrayPath': ['$.properties.list', { id: { '@path': '$.id' }, ev: { '@path': '$$.event' } }] }, event)).toEqual([
      { id: 'x', ev: 'Signed Up' },
      { id: 'y', ev: 'Signed Up' },
    ]);
  });

  test('settings stay reachable inside: @setting and $$.settings.<name>', () => {
    expect(run({ '@arrayPath': ['$.properties.list', [{ '@setting': 's' }, { '@path': '$$.settings.s' }]] }, event, { s: 'v' })).toEqual([
      ['v', 'v'],
      ['v', 'v'],
    ]);
  });

  test('absent results are dropped; nothing left, a non-array or a missing path is absent', () => {
    expect(run({ '@arrayPath': ['$.properties.list', { '@path': '$.nope' }] }, event)).toBeUndefined();
    expect(run({ '@arrayPath': ['$.properties.a', { '@path': '$' }] }, event)).toBeUndefined();
    expect(run({ '@arrayPath': ['$.missing', { '@path': '$' }] }, event)).toBeUndefined();
  });

  test('nested arrays: the inner $ is the inner element', () => {
    const root = { rows: [{ cells: [1, 2] }, { cells: [3] }] };
    expect(run({ '@arrayPath': ['$.rows', { '@arrayPath': ['$.cells', { '@path': '$' }] }] }, root)).toEqual([[1, 2], [3]]);
  });

  test(`at most ${MAX_ARRAY_ITEMS} elements are mapped`, () => {
    const root = { xs: Array.from({ length: MAX_ARRAY_ITEMS + 50 }, (_, i) => i) };
    expect((run({ '@arrayPath': ['$.xs', { '@path': '$' }] }, root) as unknown[]).length).toBe(MAX_ARRAY_ITEMS);
  });

  test('shape errors', () => {
    expect(issues({ '@arrayPath': '$.x' })[0]?.message).toMatch(/\[path, itemMapping\]/);
    expect(issues({ '@arrayPath': ['$.x', { '@nope': 1 }] })).toEqual([{ path: 'm.@arrayPath[1]', message: expect.stringMatching(/unknown directive/) }]);
  });
});

describe('@hash', () => {
  // Input / digest pairs published in Meta's customer-information-parameters documentation.
  test.each<[HashKind, string, string]>([
    ['email', 'John_Smith@gmail.com', '62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f'],
    ['phone', '1 (650) 555-1212', 'e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176'],
    ['name', 'Mary', '6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec'],
    ['name', '정', '8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14'],
    ['name', 'Valéry', '08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c'],
  ])('Meta example: %s %s', (kind, input, digest) => {
    expect(hashValue(kind, input)).toBe(digest);
  });

  test.each<[HashKind, string, string | undefined]>([
    ['email', '  Someone@Example.COM ', 'someone@example.com'],
    ['phone', '+44 (0)20 7946-0018', '442079460018'],
    ['phone', '0044 20 7946 0018', '442079460018'],
    ['phone', '+1 (650) 555-1212', '16505551212'],
    ['phone', '16505551212', '16505551212'],
    ['phone', '0 16505551212', '16505551212'],
    ['phone', 'n/a', undefined],
    ['phone', '000', undefined],
    ['name', "  O'Brien-Smith ", 'obriensmith'],
    ['name', 'Anne  Marie', 'annemarie'],
    ['name', 'Vale\u0301ry', 'valéry'],
    ['name', 'ÅSA', 'åsa'],
    ['name', '...', undefined],
    ['city', 'San Francisco', 'sanfrancisco'],
    ['city', 'St. Louis', 'stlouis'],
    ['city', 'Zu\u0308rich', 'zürich'],
    ['state', 'CA', 'ca'],
    ['state', 'California', 'ca'],
    ['state', ' new york ', 'ny'],
    ['state', 'N.Y.', 'ny'],
    ['state', 'District of Columbia', 'dc'],
    ['state', 'Washington D.C.', 'dc'],
    ['state', 'Puerto Rico', 'pr'],
    ['state', 'Hawaiʻi', 'hi'],
    ['state', 'New South Wales', 'newsouthwales'],
    ['state', 'Île-de-France', 'îledefrance'],
    ['state', '--', undefined],
    ['zip', '94025-1234', '94025'],
    ['zip', '94025', '94025'],
    ['zip', 'SW1A 1AA', 'sw1a1aa'],
    ['zip', ' - ', undefined],
    ['country', 'US', 'us'],
    ['country', ' u.s. ', 'us'],
    ['country', 'USA', 'us'],
    ['country', 'United States', 'us'],
    ['country', 'united states of america', 'us'],
    ['country', 'UK', 'gb'],
    ['country', 'Great Britain', 'gb'],
    ['country', 'Deutschland', 'de'],
    ['country', 'DEU', 'de'],
    ['country', 'The Netherlands', 'nl'],
    ['country', 'Holland', 'nl'],
    ['country', 'Côte d’Ivoire', 'ci'],
    ['country', "Cote d'Ivoire", 'ci'],
    ['country', 'Ivory Coast', 'ci'],
    ['country', 'St. Kitts & Nevis', 'kn'],
    ['country', 'Saint Kitts and Nevis', 'kn'],
    ['country', 'Türkiye', 'tr'],
    ['country', 'South Korea', 'kr'],
    ['country', 'XX', undefined],
    ['country', 'Atlantis', undefined],
    ['gender', 'Female', 'f'],
    ['gender', 'm', 'm'],
    ['gender', 'other', undefined],
    ['gender', ' ', undefined],
    ['dateOfBirth', '1990-01-31', '19900131'],
    ['dateOfBirth', '1990/01/31', '19900131'],
    ['dateOfBirth', '1990.01.31', '19900131'],
    ['dateOfBirth', '19900131', '19900131'],
    ['dateOfBirth', '1990-01-31T00:00:00Z', '19900131'],
    ['dateOfBirth', '01/31/1990', '19900131'],
    ['dateOfBirth', '2/16/1997', '19970216'],
    ['dateOfBirth', '03/04/1990', '19900304'],
    ['dateOfBirth', '31/01/1990', '19900131'],
    ['dateOfBirth', '31.01.1990', '19900131'],
    ['dateOfBirth', '04.03.1990', '19900304'],
    ['dateOfBirth', '01.31.1990', '19900131'],
    ['dateOfBirth', '31-01-1990', '19900131'],
    ['dateOfBirth', '2000-02-29', '20000229'],
    ['dateOfBirth', '1900-02-29', undefined],
    ['dateOfBirth', '1999-02-29', undefined],
    ['dateOfBirth', '1990-04-31', undefined],
    ['dateOfBirth', '1990-13-01', undefined],
    ['dateOfBirth', '13/13/1990', undefined],
    ['dateOfBirth', '1899-12-31', undefined],
    ['dateOfBirth', '1990131', undefined],
    ['dateOfBirth', '31/01/90', undefined],
    ['dateOfBirth', 'yesterday', undefined],
    ['externalId', '  User-42 ', 'User-42'],
    ['plain', ' As Is ', 'As Is'],
    ['email', '   ', undefined],
    ['externalId', '\t', undefined],
    ['plain', '', undefined],
  ])('%s normalises %j to %j', (kind, input, normalized) => {
    expect(normalizeForHash(kind, input)).toBe(normalized);
    expect(hashValue(kind, input)).toBe(normalized === undefined ? undefined : sha(normalized));
  });

  // The customer's country turns a national number into E.164 (calling code, trunk prefix dropped).
  test.each<[string, string | undefined, string | undefined]>([
    ['(650)555-1212', 'US', '16505551212'],
    ['650.555.1212', 'United States', '16505551212'],
    ['1-650-555-1212', 'us', '16505551212'],
    ['020 7946 0958', 'GB', '442079460958'],
    ['020 7946 0958', 'United Kingdom', '442079460958'],
    ['+44 (0)20 7946 0958', 'GB', '442079460958'],
    ['+44 (0)20 7946 0958', undefined, '442079460958'],
    ['442079460958', 'GB', '442079460958'],
    ['0044 20 7946 0958', 'DE', '442079460958'],
    ['0170 1234567', 'DE', '491701234567'],
    ['0170 1234567', 'Deutschland', '491701234567'],
    ['16505551212', 'GB', '16505551212'],
    ['06 12 34 56 78', 'FR', '33612345678'],
    ['(650)555-1212', undefined, '6505551212'],
    ['(650)555-1212', 'Atlantis', '6505551212'],
    ['0170 1234567', undefined, '1701234567'],
    ['12', 'US', '12'],
    ['', 'US', undefined],
  ])('phone %j with country %j normalises to %j', (input, country, normalized) => {
    const options = country === undefined ? {} : { country };
    expect(normalizeForHash('phone', input, options)).toBe(normalized);
    expect(hashValue('phone', input, options)).toBe(normalized === undefined ? undefined : sha(normalized));
  });

  test('regression: a trunk (0) after the country code was kept (+44 (0)20 … hashed as 4402…)', () => {
    expect(hashValue('phone', '+44 (0)20 7946 0958')).toBe(sha('442079460958'));
    expect(hashValue('phone', '+44 (0)20 7946 0958', { country: 'GB' })).toBe(sha('442079460958'));
  });

  test('regression: a national number libphonenumber finds possible but not valid lost its country code', () => {
    // 07700 900xxx is Ofcom's range reserved for drama: not a valid number, but of a valid length.
    expect(hashValue('phone', '07700 900123', { country: 'GB' })).toBe(sha('447700900123'));
  });

  test('regression: a US state name was hashed as the name, not its code (California → ca)', () => {
    expect(hashValue('state', 'California')).toBe(sha('ca'));
  });

  test('no kind ever hashes an empty or blank value', () => {
    for (const kind of HASH_KINDS) {
      for (const blank of ['', ' ', '\t\n', '\u00a0']) expect(hashValue(kind, blank)).toBeUndefined();
    }
  });

  test('the digest of an empty string is never passed through', () => {
    const empty = sha('');
    for (const kind of HASH_KINDS) {
      expect(hashValue(kind, empty)).toBeUndefined();
      expect(hashValue(kind, empty.toUpperCase())).toBeUndefined();
      expect(hashValue(kind, [empty, 'a@b.c'])).toEqual(kind === 'email' ? [sha('a@b.c')] : hashValue(kind, ['a@b.c']));
    }
  });

  test('a phone longer than 64 characters is absent, not parsed', () => {
    expect(normalizeForHash('phone', '1'.repeat(65))).toBeUndefined();
  });

  test('a value that already is a SHA-256 digest passes through, lowercased', () => {
    const digest = sha('x@example.com');
    expect(hashValue('email', digest.toUpperCase())).toBe(digest);
    expect(hashValue('phone', ` ${digest} `)).toBe(digest);
  });

  test('arrays hash each element and drop empty ones; numbers are read as text', () => {
    expect(hashValue('email', ['A@b.c', '', 7, null, { x: 1 }])).toEqual([sha('a@b.c'), sha('7')]);
    expect(hashValue('email', [])).toBeUndefined();
    expect(hashValue('phone', 16505551212)).toBe(sha('16505551212'));
    expect(hashValue('email', { a: 1 })).toBeUndefined();
    expect(hashValue('email', true)).toBeUndefined();
  });

  test('as a directive', () => {
    expect(run({ '@hash': { kind: 'email', value: { '@path': '$.e' } } }, { e: 'A@B.C' })).toBe(sha('a@b.c'));
    expect(issues({ '@hash': { kind: 'ssn', value: 1 } })[0]?.message).toMatch(/expected one of email/);
  });

  test('"country" reads a national phone number; it is for phones only', () => {
    const mapping = { '@hash': { kind: 'phone', value: { '@path': '$.p' }, country: { '@path': ['$.c', '$.d'] } } };
    expect(run(mapping, { p: '020 7946 0958', c: 'GB' })).toBe(sha('442079460958'));
    expect(run(mapping, { p: ['020 7946 0958', '07911 123456'], d: 'United Kingdom' })).toEqual([sha('442079460958'), sha('447911123456')]);
    expect(run(mapping, { p: '+1 650 555 1212', c: 'GB' })).toBe(sha('16505551212'));
    // No country, or one that is not a string: the digits as they are.
    expect(run(mapping, { p: '020 7946 0958' })).toBe(sha('2079460958'));
    expect(run(mapping, { p: '020 7946 0958', c: 44 })).toBe(sha('2079460958'));
    expect(issues({ '@hash': { kind: 'email', value: 'a@b.c', country: 'US' } })).toEqual([
      { path: 'm.@hash.country', message: '"country" applies to kind "phone" only' },
    ]);
  });

  test('property: never re-hashes a 64-hex digest', () => {
    fc.assert(
      fc.property(fc.constantFrom(...HASH_KINDS), fc.stringMatching(/^[0-9a-fA-F]{64}$/), fc.constantFrom('', ' ', '\t'), (kind, digest, pad) => {
        expect(hashValue(kind, `${pad}${digest}${pad}`)).toBe(digest.toLowerCase());
      }),
    );
  });

  test('property: normalisation is idempotent, so hashing normalised input gives the same digest', () => {
    const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.stringMatching(/^[0-9 ()+.\-/A-Za-z]{0,20}$/));
    fc.assert(
      fc.property(fc.constantFrom(...HASH_KINDS), text, (kind, input) => {
        const normalized = normalizeForHash(kind, input);
        fc.pre(normalized !== undefined && !SHA_RE.test(normalized) && !SHA_RE.test(input.trim()));
        expect(normalizeForHash(kind, normalized)).toBe(normalized);
        expect(hashValue(kind, normalized)).toBe(hashValue(kind, input));
      }),
      { numRuns: 500 },
    );
  });
});

describe('@lookup', () => {
  const names = { 'Order Completed': 'Purchase', purchase: 'Purchase', 'Product Added': 'AddToCart' };

  test('a hit yields the table value; a miss the default, or absent without one', () => {
    const mapping = { '@lookup': { value: { '@path': '$.event' }, table: names, default: { '@path': '$.event' } } };
    expect(run(mapping, { event: 'Order Completed' })).toBe('Purchase');
    expect(run(mapping, { event: 'purchase' })).toBe('Purchase');
    expect(run(mapping, { event: 'Newsletter Joined' })).toBe('Newsletter Joined');
    expect(run(mapping, {})).toBeUndefined();
    expect(run({ '@lookup': { value: { '@path': '$.event' }, table: names } }, { event: 'other' })).toBeUndefined();
  });

  test('keys match exactly unless ignoreCase; only strings are looked up', () => {
    const exact = { '@lookup': { value: { '@path': '$.v' }, table: names } };
    const folded = { '@lookup': { value: { '@path': '$.v' }, table: names, ignoreCase: true } };
    expect(run(exact, { v: 'order completed' })).toBeUndefined();
    expect(run(folded, { v: 'order completed' })).toBe('Purchase');
    expect(run(folded, { v: 'PURCHASE' })).toBe('Purchase');
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: { 1: 'one', true: 'yes' } } }, { v: 1 })).toBeUndefined();
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: { 1: 'one' } } }, { v: '1' })).toBe('one');
  });

  test('table values are literals of any JSON type, never evaluated', () => {
    const mapping = { '@lookup': { value: 'a', table: { a: { '@path': '$.x' } } } };
    expect(run(mapping, { x: 1 })).toEqual({ '@path': '$.x' });
    expect(run({ '@lookup': { value: 'b', table: { b: [1, true] } } }, {})).toEqual([1, true]);
  });

  test('inherited property names are never table entries', () => {
    const mapping = { '@lookup': { value: { '@path': '$.v' }, table: { a: 1 }, default: 'miss' } };
    for (const v of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype']) {
      expect(run(mapping, { v })).toBe('miss');
    }
    // A table may name them itself: they are then ordinary keys.
    const own = JSON.parse('{"__proto__": "p", "constructor": "c"}') as Record<string, unknown>;
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: own } }, { v: '__proto__' })).toBe('p');
    expect(run({ '@lookup': { value: { '@path': '$.v' }, table: own } }, { v: 'constructor' })).toBe('c');
  });

  test('a bad table is a load error, with its path', () => {
    expect(issues({ '@lookup': { value: 'a', table: [] } })).toEqual([{ path: 'm.@lookup.table', message: 'expected an object of key → literal value' }]);
    expect(issues({ '@lookup': { value: 'a', table: {} } })[0]?.message).toMatch(/expected 1 to 1000 entries/);
    const big = Object.fromEntries(Array.from({ length: MAX_LOOKUP_ENTRIES + 1 }, (_, i) => [`k${i}`, i]));
    expect(issues({ '@lookup': { value: 'a', table: big } })[0]?.message).toMatch(/expected 1 to 1000 entries/);
    expect(issues({ '@lookup': { value: 'a', table: { A: 1, a: 2 }, ignoreCase: true } })).toEqual([
      { path: 'm.@lookup.table.a', message: 'duplicate key (keys are compared ignoring case)' },
    ]);
    expect(issues({ '@lookup': { value: 'a', table: { a: null, b: '' } } }).map((i) => i.path)).toEqual(['m.@lookup.table.a', 'm.@lookup.table.b']);
    expect(issues({ '@lookup': { value: 'a', table: { ['x'.repeat(MAX_LOOKUP_KEY_LENGTH + 1)]: 1 } } })[0]?.message).toMatch(/at most 200 characters/);
    expect(issues({ '@lookup': { value: 'a', table: { a: 1 }, ignoreCase: 'yes' } })[0]?.path).toBe('m.@lookup.ignoreCase');
    expect(issues({ '@lookup': { table: { a: 1 } } })[0]?.message).toBe('missing "value"');
    expect(issues({ '@lookup': { value: 'a', table: { a: 1 }, else: 2 } })[0]?.message).toBe('unknown key "else"');
    expect(issues({ '@lookup': { value: { '@nope': 1 }, table: { a: 1 } } })[0]?.path).toBe('m.@lookup.value');
  });

  test('property: the result is the own table entry for the value, else the default', () => {
    const key = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'prototype', 'valueOf'));
    const literal = fc.oneof(fc.string({ minLength: 1 }), fc.integer(), fc.boolean());
    fc.assert(
      fc.property(fc.dictionary(key, literal, { minKeys: 1, maxKeys: 20 }), fc.oneof(key, fc.jsonValue()), fc.boolean(), (table, value, ignoreCase) => {
        const keys = Object.keys(table);
        fc.pre(!ignoreCase || new Set(keys.map((k) => k.toLowerCase())).size === keys.length);
        const compiled = compileMapping({ '@lookup': { value: { '@literal': value }, table, ignoreCase, default: '<miss>' } });
        expect(compiled.issues).toEqual([]);
        const hit = typeof value === 'string' ? keys.find((k) => (ignoreCase ? k.toLowerCase() === value.toLowerCase() : k === value)) : undefined;
        expect(compiled.evaluate({})).toEqual(hit === undefined ? '<miss>' : table[hit]);
      }),
      { numRuns: 300 },
    );
  });

  test('property: never throws, whatever the value; a long value is a miss without folding', () => {
    const compiled = compileMapping({ '@lookup': { value: { '@path': '$.v' }, table: { a: 1 }, ignoreCase: true, default: 0 } });
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect([0, 1]).toContain(compiled.evaluate({ v }));
      }),
    );
    expect(compiled.evaluate({ v: 'A'.repeat(10_000) })).toBe(0);
  });
});

describe('@transform', () => {
  const t = (fn: Parameters<typeof applyTransform>[0], value: unknown): unknown => applyTransform(fn, value);

  test.each([
    ['unixSeconds', '2024-05-01T12:00:00.999Z', 1714564800],
    ['unixSeconds', 1714564800123, 1714564800],
    ['unixSeconds', 1714564800, 1714564800],
    ['unixSeconds', '1714564800', 1714564800],
    ['unixSeconds', 1714564800123456, 1714564800],
    ['unixMillis', '2024-05-01T12:00:00.123Z', 1714564800123],
    ['unixMillis', 1714564800, 1714564800000],
    ['unixMicros', '2024-05-01T12:00:00.123Z', 1714564800123000],
    ['unixMicros', 1714564800.5, 1714564800500000],
    ['isoDate', 1714564800, '2024-05-01T12:00:00.000Z'],
    ['isoDate', '2024-05-01T14:00:00+02:00', '2024-05-01T12:00:00.000Z'],
    ['lower', 'MiXeD', 'mixed'],
    ['upper', 'eur', 'EUR'],
    ['trim', '  x ', 'x'],
    ['snakeCase', 'Order Completed', 'order_completed'],
    ['snakeCase', 'addToCart', 'add_to_cart'],
    ['snakeCase', '  Sign-up / Step 2!', 'sign_up_step_2'],
    ['snakeCase', 'already_snake', 'already_snake'],
    ['toString', 12.5, '12.5'],
    ['toString', true, 'true'],
    ['toNumber', '49.90', 49.9],
    ['toNumber', ' 7 ', 7],
    ['toNumber', 3, 3],
    ['toBoolean', 'TRUE', true],
    ['toBoolean', 'no', false],
    ['toBoolean', 1, true],
    ['toBoolean', false, false],
    ['truncateIp', '203.0.113.7', '203.0.113.0'],
    ['truncateIp', '2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:85a3::'],
    ['truncateIp', '2001:0DB8:0000:0000::1', '2001:db8::'],
    ['truncateIp', '::ffff:192.0.2.33', '192.0.2.0'],
    ['truncateIp', 'fe80::1%eth0', 'fe80::'],
    ['truncateIp', '::1', '::'],
    ['stripQuery', 'https://a.example/p?q=1#frag', 'https://a.example/p'],
    ['stripQuery', 'https://a.example/p#frag', 'https://a.example/p'],
    ['stripQuery', 'https://a.example/p', 'https://a.example/p'],
  ] as const)('%s(%j) = %j', (fn, input, expected) => {
    expect(t(fn, input)).toEqual(expected);
  });

  test.each([
    ['unixSeconds', 'yesterday'],
    ['unixSeconds', '05/01/2024'],
    ['unixSeconds', {}],
    ['unixSeconds', 1e300],
    ['toNumber', 'abc'],
    ['toNumber', '1,5'],
    ['toNumber', true],
    ['toNumber', ''],
    ['toBoolean', 'maybe'],
    ['toBoolean', 2],
    ['toString', { a: 1 }],
    ['toString', null],
    ['trim', '   '],
    ['snakeCase', ' -- '],
    ['lower', ['A']],
    ['truncateIp', 'not-an-ip'],
    ['truncateIp', 12],
    ['stripQuery', '?only=query'],
  ] as const)('%s(%j) is absent', (fn, input) => {
    expect(t(fn, input)).toBeUndefined();
  });

  test('as a directive; an unknown fn is a compile error', () => {
    expect(run({ '@transform': { fn: 'upper', value: { '@path': '$.c' } } }, { c: 'usd' })).toBe('USD');
    expect(issues({ '@transform': { fn: 'eval', value: 1 } })[0]?.message).toMatch(/expected one of lower/);
    expect(issues({ '@transform': { fn: 'upper' } })[0]?.message).toMatch(/missing "value"/);
  });

  test('truncateIp output is itself a valid, already-truncated address', () => {
    expect(truncateIp('203.0.113.0')).toBe('203.0.113.0');
    expect(truncateIp('2001:db8:85a3::')).toBe('2001:db8:85a3::');
  });
});

describe('@merge', () => {
  test('later objects win; non-objects and absent parts are skipped; nothing left is absent', () => {
    expect(run({ '@merge': [{ a: 1, b: 1 }, { '@path': '$.o' }, 'x', { '@path': '$.none' }] }, { o: { b: 2, c: 3 } })).toEqual({ a: 1, b: 2, c: 3 });
    expect(run({ '@merge': [{ '@path': '$.none' }, [1]] }, {})).toBeUndefined();
  });

  test('keys from data cannot reach the prototype', () => {
    const root = JSON.parse('{"o": {"__proto__": {"polluted": true}, "constructor": 1, "ok": 1}}') as unknown;
    const out = run({ '@merge': [{ '@path': '$.o' }] }, root) as Record<string, unknown>;
    expect(out).toEqual({ ok: 1 });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('argument errors are compile errors with their path', () => {
    expect(issues({ '@merge': {} })[0]).toEqual({ path: 'm.@merge', message: `expected an array of 1 to ${MAX_MERGE_OBJECTS} mappings` });
    expect(issues({ '@merge': [] })[0]?.path).toBe('m.@merge');
    expect(issues({ '@merge': Array.from({ length: MAX_MERGE_OBJECTS + 1 }, () => ({})) })[0]?.path).toBe('m.@merge');
    expect(issues({ '@merge': [{ x: { '@nope': 1 } }] })[0]?.path).toBe('m.@merge[0].x');
  });

  test('never throws on any JSON', () => {
    const compiled = compileMapping({ '@merge': [{ '@path': '$.a' }, { '@path': '$.b' }, { '@path': '$' }] });
    fc.assert(fc.property(fc.jsonValue(), (root) => void compiled.evaluate(root)));
  });
});

describe('@scalars', () => {
  const props = { s: 'text', n: 4.5, b: true, f: false, z: 0, e: '', nil: null, inf: 'Infinity', o: { x: 1 }, a: [1] };

  test('keeps one kind of scalar, in order; booleans count as text', () => {
    expect(run({ '@scalars': { value: { '@path': '$' }, type: 'string' } }, props)).toEqual({ s: 'text', b: 'true', f: 'false', inf: 'Infinity' });
    expect(run({ '@scalars': { value: { '@path': '$' }, type: 'number' } }, props)).toEqual({ n: 4.5, z: 0 });
  });

  test('omit and max bound what is kept; nothing kept is absent', () => {
    expect(run({ '@scalars': { value: { '@path': '$' }, type: 'string', omit: ['s', 'b'], max: 1 } }, props)).toEqual({ f: 'false' });
    expect(run({ '@scalars': { value: { '@path': '$.o' }, type: 'string' } }, props)).toBeUndefined();
    expect(run({ '@scalars': { value: { '@path': '$.a' }, type: 'number' } }, props)).toBeUndefined();
    expect(run({ '@scalars': { value: { '@path': '$.missing' }, type: 'number' } }, props)).toBeUndefined();
  });

  test(`at most ${MAX_SCALAR_FIELDS} fields from a hostile object`, () => {
    const big = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    const out = run({ '@scalars': { value: { '@path': '$' }, type: 'number' } }, big) as Record<string, number>;
    expect(Object.keys(out)).toHaveLength(MAX_SCALAR_FIELDS);
    expect(out.k0).toBe(0);
  });

  test('argument errors are compile errors with their path', () => {
    expect(issues({ '@scalars': { value: 1, type: 'date' } })[0]).toEqual({ path: 'm.@scalars.type', message: 'expected "string" or "number"' });
    expect(issues({ '@scalars': { value: 1, type: 'string', omit: 'x' } })[0]?.path).toBe('m.@scalars.omit');
    expect(issues({ '@scalars': { value: 1, type: 'string', max: 0 } })[0]?.path).toBe('m.@scalars.max');
    expect(issues({ '@scalars': { value: 1, type: 'string', extra: 1 } })[0]?.message).toMatch(/unknown key "extra"/);
  });

  test('never throws, and keeps only scalars of its kind, on any JSON', () => {
    const compiled = compileMapping({ '@scalars': { value: { '@path': '$' }, type: 'string' } });
    fc.assert(
      fc.property(fc.jsonValue(), (root) => {
        const out = compiled.evaluate(root);
        if (out === undefined) return;
        expect(Object.values(out as object).every((v) => typeof v === 'string' && v !== '')).toBe(true);
      }),
    );
  });
});

describe('properties of the whole language', () => {
  const noDirectiveKeys = (value: unknown): boolean => {
    if (Array.isArray(value)) return value.every(noDirectiveKeys);
    if (typeof value === 'object' && value !== null) {
      return Object.entries(value).every(([k, v]) => !k.startsWith('@') && k !== '__proto__' && noDirectiveKeys(v));
    }
    return true;
  };

  test('arbitrary JSON literal mappings map to themselves', () => {
    fc.assert(
      fc.property(fc.jsonValue().filter(noDirectiveKeys), (value) => {
        expect(run(value, event)).toEqual(value);
      }),
    );
  });
});
