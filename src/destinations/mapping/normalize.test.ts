import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { hashValue } from './hash.ts';
import { HASH_KINDS, normalizeForHash, type HashKind } from './normalize.ts';
import { sha } from './test-helpers.ts';

const SHA_RE = /^[0-9a-fA-F]{64}$/;

describe('@hash', () => {
  test.each<[HashKind, string, string | undefined]>([
    ['email', '  Someone@Example.COM ', 'someone@example.com'],
    ['googleEmail', ' Jane.Doe@GMAIL.com ', 'janedoe@gmail.com'],
    ['googleEmail', 'j.o.e@googlemail.com', 'joe@googlemail.com'],
    ['googleEmail', 'Jane.Doe@example.com', 'jane.doe@example.com'],
    ['phoneE164', '+1 (650) 555-1212', '+16505551212'],
    ['phoneE164', 'n/a', undefined],
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
    ['phoneE164', '+1 (213) 373-4253', '+12133734253'],
    ['phoneE164', '+44 (0)20 7946 0958', '+442079460958'],
    ['phoneE164', 'no digits', undefined],
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

  test('a phone longer than 64 characters is absent, not parsed', () => {
    expect(normalizeForHash('phone', '1'.repeat(65))).toBeUndefined();
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
