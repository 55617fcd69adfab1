// Keeps docs/templates.md true: its labelled examples are evaluated here.
//   ```json mapping / ```json settings / ```json input / ```json output  → one mapping example
//   ```json template                                                     → must load
//   ```json case <template-id>                                           → must be a passing case
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { CaseSchema, comparableOutcome, runCase } from './cases.ts';
import { DEFAULT_TEMPLATES_DIR, loadTemplates, parseTemplate } from './load.ts';
import { compileMapping } from './mapping/compile.ts';
import { DIRECTIVES } from './mapping/directives/index.ts';

const markdown = readFileSync(new URL('../../docs/templates.md', import.meta.url), 'utf8');

interface Block {
  label: string;
  arg: string | undefined;
  line: number;
  value: unknown;
}

const blocks: Block[] = [...markdown.matchAll(/^```json (\w+)(?: ([\w-]+))?\n([\s\S]*?)^```$/gm)].map((m) => ({
  label: m[1] as string,
  arg: m[2],
  line: markdown.slice(0, m.index).split('\n').length,
  value: JSON.parse(m[3] as string) as unknown,
}));

interface Example {
  line: number;
  mapping: unknown;
  settings: Record<string, unknown>;
  input?: unknown;
  output?: unknown;
}

const examples: Example[] = [];
for (const block of blocks) {
  const current = examples.at(-1);
  if (block.label === 'mapping') examples.push({ line: block.line, mapping: block.value, settings: {} });
  else if (block.label === 'settings' && current) current.settings = block.value as Record<string, unknown>;
  else if (block.label === 'input' && current) current.input = block.value;
  else if (block.label === 'output' && current) current.output = block.value;
}

describe('docs/templates.md mapping examples', () => {
  test('there is an example for every directive', () => {
    const text = JSON.stringify(examples.map((e) => e.mapping));
    for (const directive of DIRECTIVES) expect(text).toContain(`"${directive}"`);
  });

  test.each(examples.map((e) => [e.line, e] as const))('example at line %i', (_line, example) => {
    expect(example.input).toBeDefined();
    expect(example.output).toBeDefined();
    const compiled = compileMapping(example.mapping, { settings: Object.keys(example.settings) });
    expect(compiled.issues).toEqual([]);
    expect(compiled.evaluate(example.input, example.settings)).toEqual(example.output);
  });
});

describe('docs/templates.md template and case examples', () => {
  const templates = loadTemplates(DEFAULT_TEMPLATES_DIR);

  test.each(blocks.filter((b) => b.label === 'template').map((b) => [b.line, b] as const))('template at line %i loads', (_line, block) => {
    expect(() => parseTemplate(block.value)).not.toThrow();
  });

  test.each(blocks.filter((b) => b.label === 'case').map((b) => [b.line, b] as const))('case at line %i passes', (_line, block) => {
    const template = templates.get(block.arg ?? '');
    expect(template).toBeDefined();
    const c = CaseSchema.parse(block.value);
    expect(comparableOutcome(c, runCase(template!, c))).toEqual(c.expect);
  });

  test('every example block was recognised', () => {
    expect(blocks.filter((b) => b.label === 'template')).toHaveLength(1);
    expect(blocks.filter((b) => b.label === 'case')).toHaveLength(1);
    expect(examples.length).toBeGreaterThanOrEqual(DIRECTIVES.length);
  });
});
