import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scrubPii } from './pii.ts';

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
