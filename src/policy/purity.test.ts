import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The policy is a pure function of plain data (DESIGN.md "Policy"): outside its own folder it may
 * import types only, so it pulls in no decoder, cache, store, delivery or HTTP at run time. The
 * consent step decodes and checks (src/consent/tcf-verdict.ts) and hands it the result.
 */
describe('src/policy imports nothing but types from outside itself', () => {
  const dir = new URL('./', import.meta.url);
  const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

  it.each(sources)('%s', (file) => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    const runtime = [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]).filter((from) => !from!.startsWith('./'));
    expect(runtime).toEqual([]);
  });
});
