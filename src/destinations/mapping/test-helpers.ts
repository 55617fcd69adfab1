/** Shared by the mapping tests (not a test file itself): compile-and-run helpers and one sample event. */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { compileMapping } from './compile.ts';
import type { MappingIssue } from './types.ts';

export const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** Compile (expecting no issues) and evaluate against `root`; settings are declared from `settings`. */
export function run(mapping: unknown, root: unknown, settings: Record<string, unknown> = {}): unknown {
  const compiled = compileMapping(mapping, { settings: Object.keys(settings) });
  expect(compiled.issues).toEqual([]);
  return compiled.evaluate(root, settings);
}

export function issues(mapping: unknown, settings: string[] = []): MappingIssue[] {
  return [...compileMapping(mapping, { settings, at: 'm' }).issues];
}

export const event = {
  messageId: 'm1',
  type: 'track',
  event: 'Signed Up',
  properties: { a: { b: 1 }, list: [{ id: 'x' }, { id: 'y' }], empty: '', nil: null, zero: 0, no: false, 'odd key': 'odd' },
  context: { page: { url: 'https://a.example/p?q=1' } },
};
