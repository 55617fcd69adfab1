// The one runner for template cases: every templates/<id>/cases/*.json becomes a test.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { comparableOutcome, loadCases, runCase } from './cases.ts';
import { DEFAULT_TEMPLATES_DIR, formatIssues, inspectTemplates, templateDirectories } from './load.ts';

const { templates, problems } = inspectTemplates(DEFAULT_TEMPLATES_DIR);

test('every template loads', () => {
  expect(problems.flatMap((p) => formatIssues(p.file, p.issues))).toEqual([]);
});

for (const name of templateDirectories(DEFAULT_TEMPLATES_DIR)) {
  const dir = join(DEFAULT_TEMPLATES_DIR, name);
  const cases = loadCases(dir, templates.get(name)?.definition.apiVersion);

  describe(`template ${name}`, () => {
    test('ships a README and at least 4 cases', () => {
      expect(existsSync(join(dir, 'README.md'))).toBe(true);
      expect(cases.length).toBeGreaterThanOrEqual(4);
    });

    for (const loaded of cases) {
      test(`${loaded.name}: ${loaded.case?.description ?? 'invalid case file'}`, () => {
        expect(loaded.issues).toEqual([]);
        const template = templates.get(name);
        expect(template).toBeDefined();
        const c = loaded.case!;
        const outcome = runCase(template!, c);
        expect(comparableOutcome(c, outcome)).toEqual(c.expect);
      });
    }
  });
}
