import { describe, expect, test } from 'vitest';
import { parsePath } from './path.ts';

describe('@path', () => {
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
});
