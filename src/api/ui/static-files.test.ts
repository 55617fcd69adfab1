import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importMapHashes, loadUiFiles, pagePolicy } from './static-files.ts';

describe('dashboard files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-ui-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the import map hashes: exactly the text between the tags, importmap scripts only', () => {
    const map = '\n{"imports":{"preact":"/ui/vendor/preact.mjs"}}\n';
    const html = `<script type="importmap">${map}</script><script>alert(1)</script><script type="module" src="/ui/assets/app.js"></script>`;
    const hash = createHash('sha256').update(map).digest('base64');
    expect(importMapHashes(html)).toEqual([`'sha256-${hash}'`]);
    expect(pagePolicy([`'sha256-${hash}'`])).toContain(`script-src 'self' 'sha256-${hash}';`);
    expect(pagePolicy([])).toContain("script-src 'self';");
  });

  it('reads the served files of the folder once: by path under it, no dotfiles, tests, links or unknown types', () => {
    writeFileSync(join(dir, 'index.html'), '<script type="importmap">{}</script>');
    writeFileSync(join(dir, 'app.js'), 'export {};');
    writeFileSync(join(dir, 'style.css'), 'p{}');
    writeFileSync(join(dir, 'app.test.js'), '');
    writeFileSync(join(dir, '.env'), 'SECRET=1');
    writeFileSync(join(dir, 'notes.md'), '');
    mkdirSync(join(dir, 'views'));
    writeFileSync(join(dir, 'views', 'overview.js'), 'export {};');
    symlinkSync('/etc/passwd', join(dir, 'passwd.txt'));
    const files = loadUiFiles(dir);
    expect([...files.assets.keys()].sort()).toEqual(['app.js', 'style.css', 'views/overview.js']);
    expect(files.assets.get('app.js')!.type).toBe('text/javascript; charset=utf-8');
    expect(files.index!.scriptHashes).toHaveLength(1);
    expect(files.skipped).toEqual(expect.arrayContaining(['app.test.js: not a served type', 'notes.md: not a served type']));
    expect([...files.vendor.keys()]).toEqual(['preact.mjs', 'preact-hooks.mjs', 'htm.mjs', 'uplot.mjs', 'uplot.css']);
  });

  it('no index.html: no page', () => {
    expect(loadUiFiles(join(dir, 'views')).index).toBeUndefined();
  });
});
