import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CLASSES, TagwardenError } from './errors.ts';

/** docs/errors.md must list exactly the codes the code has, with the same status and retry flag. */
describe('error codes', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, { status: string; retried: string }>();
  for (const m of doc.matchAll(/^\| `(TW_ERR_[A-Z_]+)` \| ([^|]+) \| (yes|no) \|/gm)) {
    rows.set(m[1]!, { status: m[2]!.trim(), retried: m[3]! });
  }

  const instances = ERROR_CLASSES.map((C) => new C('x'));

  it('every class is documented with its status and retry flag', () => {
    for (const e of instances) {
      const row = rows.get(e.code);
      expect(row, `${e.code} missing from docs/errors.md`).toBeDefined();
      expect(row!.retried).toBe(e.retryable ? 'yes' : 'no');
      if (row!.status !== '–') expect(Number(row!.status)).toBe(e.status);
    }
  });

  it('every documented code exists', () => {
    const codes = new Set(instances.map((e) => e.code));
    for (const code of rows.keys()) expect(codes.has(code), `${code} documented but not in src/errors.ts`).toBe(true);
  });

  it('codes are unique and follow TW_ERR_*', () => {
    const codes = instances.map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^TW_ERR_[A-Z_]+$/);
    for (const e of instances) expect(e).toBeInstanceOf(TagwardenError);
  });
});
