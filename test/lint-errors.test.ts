import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

/**
 * src throws only the TW_ERR_* family (src/errors.ts) and takes its time from the injected Clock
 * (src/lib/clock.ts): the lint refuses a bare `Error`, `Date.now()`, `new Date()` and the global
 * timers there (tests may use what they like; src/lib and main.ts read the wall clock). Linted as
 * probe files, not written, with type-aware parsing off as in lint-boundaries.test.ts.
 */
const eslint = new ESLint({
  cwd: new URL('..', import.meta.url).pathname,
  overrideConfig: [tseslint.configs.disableTypeChecked, { languageOptions: { parserOptions: { projectService: false, project: null } } }],
  ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-syntax',
});

async function refused(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\n`, { filePath });
  expect(result!.messages.filter((m) => m.fatal === true)).toEqual([]);
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-syntax').map((m) => m.message);
}

describe('lint: the error family and the injected clock', () => {
  it('refuses new Error and Error() in src, pointing to src/errors.ts', async () => {
    for (const code of ["export function f(): never { throw new Error('x'); }", "export function f(): never { throw Error('x'); }"]) {
      expect(await refused('src/store/probe.ts', code)).toEqual([expect.stringContaining('src/errors.ts')]);
    }
  });

  it('takes the family, and bare errors in tests', async () => {
    expect(await refused('src/store/probe.ts', "import { InternalError } from '../errors.ts';\nexport function f(): never { throw new InternalError('x'); }")).toEqual([]);
    expect(await refused('src/store/probe.test.ts', "export function f(): never { throw new Error('x'); }")).toEqual([]);
    expect(await refused('test/probe.ts', "export function f(): never { throw new Error('x'); }")).toEqual([]);
  });

  it('refuses the wall clock and the global timers in src, outside the clock itself', async () => {
    for (const code of ['export const t = Date.now();', 'export const now = Date.now;', 'export const d = new Date();', 'export const h = setTimeout(() => undefined, 5);', 'export const h = globalThis.setInterval(() => undefined, 5);']) {
      expect(await refused('src/store/probe.ts', code), code).toEqual([expect.stringContaining('src/lib/clock.ts')]);
    }
    for (const code of ["import { systemClock } from './clock.ts';\nexport const t = Date.now() + systemClock.now();", 'export const h = setTimeout(() => undefined, 5);']) {
      expect(await refused('src/lib/probe.ts', code), code).toEqual([]);
    }
    expect(await refused('src/store/probe.ts', "import { systemClock } from '../lib/clock.ts';\nexport const d = new Date(systemClock.now());\nexport const h = systemClock.setTimeout(() => undefined, 5);")).toEqual([]);
    expect(await refused('src/store/probe.test.ts', 'export const t = Date.now();')).toEqual([]);
  });
});
