import { describe, expect, it } from 'vitest';
import { API_JSON_LIMITS, jsonShapeProblem } from './body.ts';

describe('jsonShapeProblem', () => {
  const limits = { maxDepth: 3, maxNodes: 5 };
  it.each<[string, string | undefined]>([
    ['{}', undefined],
    ['[[[]]]', undefined],
    ['[[[[]]]]', 'depth'],
    ['{"a":{"b":{"c":{}}}}', 'depth'],
    ['"[[[[[[[["', undefined],
    ['{"a":"\\"[[[[[[["}', undefined],
    ['{"a":"\\\\","b":[[[[]]]]}', 'depth'],
    ['[1,2,3,4]', undefined],
    ['[1,2,3,4,5,6]', 'members'],
    ['["a,b,c,d,e,f,g"]', undefined],
    ['12', undefined],
  ])('%s → %s', (text, path) => {
    const problem = jsonShapeProblem(text, limits);
    if (path === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatchObject({ code: 'TW_ERR_VALIDATION', status: 400, details: { issues: [{ path }] } });
  });

  it('scans a body nested far beyond the stack without recursion', () => {
    const text = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(jsonShapeProblem(text, API_JSON_LIMITS)?.message).toMatch(/nested deeper than 64 levels/);
  });
});
