import { test } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { comparableOutcome, loadCases, runCase } from './src/destinations/cases.ts';
import { DEFAULT_TEMPLATES_DIR, inspectTemplates, formatIssues } from './src/destinations/load.ts';
test('dump', () => {
  const { templates, problems } = inspectTemplates(DEFAULT_TEMPLATES_DIR);
  console.log(JSON.stringify(problems.flatMap((p) => formatIssues(p.file, p.issues))));
  const dir = join(DEFAULT_TEMPLATES_DIR, 'google-ads');
  for (const loaded of loadCases(dir)) {
    if (loaded.issues.length) { console.log(loaded.name, loaded.issues); continue; }
    const out = comparableOutcome(loaded.case!, runCase(templates.get('google-ads')!, loaded.case!));
    const file = join(dir, 'cases', loaded.name.replace(/\[.*$/, '') + (loaded.name.endsWith('.json') ? '' : '.json'));
    const raw = JSON.parse(readFileSync(file, 'utf8'));
    raw.expect = out;
    writeFileSync(file, JSON.stringify(raw, null, 2) + '\n');
  }
});
