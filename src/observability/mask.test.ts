import { describe, expect, it } from 'vitest';
import { maskRequest } from './mask.ts';

describe('maskRequest', () => {
  it('masks raw and URL-encoded secrets in url, headers and body', () => {
    const out = maskRequest(
      {
        method: 'POST',
        url: 'https://x.test/p?access_token=a%2Bb%2Fc&x=1',
        headers: { authorization: 'Bearer a+b/c', 'content-type': 'application/json' },
        body: '{"token":"a+b/c"}',
      },
      ['a+b/c', ''],
    );
    expect(out.url).toBe('https://x.test/p?access_token=[secret]&x=1');
    expect(out.headers.authorization).toBe('Bearer [secret]');
    expect(out.body).toBe('{"token":"[secret]"}');
    expect(out.headers['content-type']).toBe('application/json');
  });

  it('masks a credential in the URL query that no setting declares (a webhook URL with ?token=; audit, issue 15)', () => {
    const out = maskRequest({ method: 'POST', url: 'https://hooks.test/in?token=QUERYSECRET&x=1', headers: {} }, []);
    expect(out.url).toBe('https://hooks.test/in?token=[secret]&x=1');
  });
});
