import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

/**
 * src throws only the TW_ERR_* family (src/errors.ts): the lint refuses a bare `Error` there, and
 * only there (tests may throw what they like). Linted as probe files, not written, with type-aware
 * parsing off as in lint-boundaries.test.ts.
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

describe('lint: the error family', () => {
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
});
