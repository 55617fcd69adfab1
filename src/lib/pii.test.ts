import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scrubPii, scrubPiiText } from './pii.ts';

describe('scrubPii', () => {
  it('masks PII keys at any depth and keeps the rest', () => {
    const out = scrubPii({
      data: [{ event_name: 'Purchase', user_data: { em: 'x' }, custom_data: { value: 3 } }],
      context: { ip: '1.2.3.4', page: { url: 'https://a/?email=x', title: 'T' } },
      traits: { email: 'a@b.c' },
    });
    expect(out).toEqual({
      data: [{ event_name: 'Purchase', user_data: '[pii]', custom_data: { value: 3 } }],
      context: { ip: '[pii]', page: { url: '[pii]', title: 'T' } },
      traits: '[pii]',
    });
  });

  it('never leaves an email-looking value under a PII key', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.emailAddress(), (json, email) => {
        const out = JSON.stringify(scrubPii({ payload: json, user: { email } }));
        expect(out.includes(`"email":"${email}"`)).toBe(false);
      }),
    );
  });
});

describe('scrubPiiText (vendor answers in logs)', () => {
  it.each([
    ['{"error":{"message":"Invalid email jane.doe@example.com in user_data"}}', 'jane.doe@example.com'],
    ['{"error":{"message":"bad","error_user_msg":"ph +33 6 12 34 56 78 is not valid"}}', '12 34 56 78'],
    ['value (650) 555-1212 refused', '555-1212'],
    ['ip:203.0.113.9 blocked', '203.0.113.9'],
    ['client 2001:db8::1 refused', '2001:db8::1'],
    ['em=86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d&x=1', '86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d'],
    ['cookie fb.1.1772366000000.1234567890 rejected', '1772366000000'],
    ['{"user_data":{"client_user_agent":"Mozilla/5.0"},"x":1}', 'Mozilla'],
    // Cut short (not JSON any more): still token by token.
    ['{"error":{"message":"email jane@example.com", "fbtrace', 'jane@example.com'],
  ])('masks %s', (text, secret) => {
    const out = scrubPiiText(text);
    expect(out).not.toContain(secret);
    expect(out).toContain('[pii]');
  });

  it('keeps what diagnoses the failure: codes, subcodes, times, field names, messages', () => {
    const text = '{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804019,"fbtrace_id":"AbC12","at":"10:00:00"}}';
    expect(scrubPiiText(text)).toBe(text);
    expect(scrubPiiText('write to jane@example.com.')).toBe('write to [pii].');
  });

  it('never leaves an e-mail, IPv4 address or SHA-256 digest embedded in any text', () => {
    const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
    const ipv4 = fc.ipV4();
    const pii = fc.oneof(fc.emailAddress(), ipv4, hex);
    const sep = fc.constantFrom(' ', '"', '=', ',', '\n', ': ', '(');
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), sep, pii, sep, fc.string({ maxLength: 40 }), (before, s1, value, s2, after) => {
        const out = scrubPiiText(`${before}${s1}${value}${s2}${after}`);
        expect(out.includes(value)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('is linear on adversarial input (no regex backtracking blow-up)', () => {
    const inputs = ['a@'.repeat(20_000), `1${' '.repeat(60_000)}x`, `${'.'.repeat(60_000)}x`, `${'a'.repeat(30_000)}@${'b'.repeat(30_000)}`, ':'.repeat(60_000)];
    for (const input of inputs) {
      const started = performance.now();
      scrubPiiText(input);
      // Generous: a quadratic scan of 60 000 characters takes seconds, a linear one milliseconds.
      expect(performance.now() - started).toBeLessThan(1000);
    }
  });
});
