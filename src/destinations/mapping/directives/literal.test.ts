import { describe, expect, test } from 'vitest';
import { event, run } from '../test-helpers.ts';

describe('literals', () => {
  test('@literal passes @ keys through unevaluated', () => {
    expect(run({ '@literal': { '@context': 'https://schema.org', x: { '@path': '$.a' } } }, event)).toEqual({
      '@context': 'https://schema.org',
      x: { '@path': '$.a' },
    });
  });
});
