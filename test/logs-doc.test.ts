import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** docs/logs.md's table lists lines by their message: each must be a message the source writes, so a renamed line shows here. */
describe('docs/logs.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/logs.md'), 'utf8');
  const text = sources(join(ROOT, 'src'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const messages = [...doc.matchAll(/^\| (.+?) \| (?:warn|info|error|debug)/gm)].flatMap((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!));

  it('lists messages', () => {
    expect(messages.length).toBeGreaterThan(10);
  });
  it.each(messages)('%s is written by src/', (msg) => {
    expect(text).toContain(`'${msg}'`);
  });
});
