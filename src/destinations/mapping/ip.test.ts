import { describe, expect, test } from 'vitest';
import { truncateIp } from './ip.ts';

describe('@transform', () => {
  test('truncateIp output is itself a valid, already-truncated address', () => {
    expect(truncateIp('203.0.113.0')).toBe('203.0.113.0');
    expect(truncateIp('2001:db8:85a3::')).toBe('2001:db8:85a3::');
  });
});
