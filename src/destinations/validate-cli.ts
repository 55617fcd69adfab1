/**
 * `npm run validate:templates [dir]`: load every template (schema + compiled mappings) and run its
 * cases; print OK per template or every problem, and exit 1 when anything failed.
 */
import { join, resolve } from 'node:path';
import { checkCase, loadCases } from './cases.ts';
import { DEFAULT_TEMPLATES_DIR, displayPath, formatIssues, inspectTemplates, templateDirectories } from './load.ts';

function main(argv: readonly string[]): number {
  const dir = argv[0] === undefined ? DEFAULT_TEMPLATES_DIR : resolve(argv[0]);
  const { templates, problems } = inspectTemplates(dir);
  let failed = false;
  for (const problem of problems) {
    failed = true;
    for (const line of formatIssues(problem.file, problem.issues)) console.error(`FAIL ${line}`);
  }
  const names = problems.some((p) => p.file === dir) ? [] : templateDirectories(dir);
  for (const name of names) {
    const template = templates.get(name);
    if (template === undefined) continue;
    const lines: string[] = [];
    const cases = loadCases(join(dir, name), template.definition.apiVersion);
    for (const loaded of cases) {
      const shown = displayPath(loaded.file);
      if (loaded.case === undefined) {
        for (const issue of loaded.issues) lines.push(`${shown}: ${issue}`);
        continue;
      }
      const result = checkCase(template, loaded.case);
      if (!result.ok) {
        lines.push(`${shown}: expected ${JSON.stringify(result.expected)}`);
        lines.push(`${' '.repeat(shown.length)}  but got ${JSON.stringify(result.actual)}`);
      }
    }
    if (lines.length > 0) {
      failed = true;
      for (const line of lines) console.error(`FAIL ${line}`);
    } else {
      console.log(`OK   ${name} (v${template.version}, ${cases.length} case${cases.length === 1 ? '' : 's'})`);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
