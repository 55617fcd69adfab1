import { describe, expect, it } from 'vitest';
import { maskUrlCredentials, maskSecrets } from './mask-secrets.ts';

describe('maskUrlCredentials', () => {
  it.each([
    ['https://hooks.example/in?token=abc&x=1', 'https://hooks.example/in?token=[secret]&x=1'],
    ['https://graph.example/v1?access_token=abc', 'https://graph.example/v1?access_token=[secret]'],
    ['https://ga.example/mp/collect?measurement_id=G-1&api_secret=s3', 'https://ga.example/mp/collect?measurement_id=G-1&api_secret=[secret]'],
    ['https://user:pass@hooks.example/in', 'https://hooks.example/in'],
    ['https://hooks.example/in?sig=a&sig=b', 'https://hooks.example/in?sig=[secret]'],
    // Nothing to mask, or not an http(s) URL: unchanged, byte for byte.
    ['https://hooks.example/in?page=2', 'https://hooks.example/in?page=2'],
    ['HTTPS://Hooks.Example/in', 'HTTPS://Hooks.Example/in'],
    ['not a url ?token=x', 'not a url ?token=x'],
    ['mailto:a@example.com?token=x', 'mailto:a@example.com?token=x'],
  ])('%s → %s', (input, want) => {
    expect(maskUrlCredentials(input)).toBe(want);
  });

  it('after maskSecrets: a declared secret and an undeclared query credential are both gone', () => {
    const url = 'https://hooks.example/in/KNOWN?token=UNDECLARED';
    const out = maskUrlCredentials(maskSecrets(url, ['KNOWN']));
    expect(out).not.toContain('KNOWN');
    expect(out).not.toContain('UNDECLARED');
  });
});
