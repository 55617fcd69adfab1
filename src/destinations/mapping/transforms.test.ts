import { describe, expect, test } from 'vitest';
import { applyTransform } from './transforms.ts';

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
    ['googleDateTime', '2024-05-01T14:00:00.999+02:00', '2024-05-01 12:00:00+00:00'],
    ['googleDateTime', 1714564800, '2024-05-01 12:00:00+00:00'],
    ['googleDateTime', 1714564800123, '2024-05-01 12:00:00+00:00'],
    ['googleDateTime', 'yesterday', undefined],
    ['googleDateTime', '+275760-09-13T00:00:00Z', undefined],
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
});
