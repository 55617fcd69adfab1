import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The `tagwarden` bin (package.json `bin` → bin/tagwarden.mjs) started by a system Node that cannot
 * run TypeScript: it runs src/cli.ts under the pinned Node of node_modules/.bin/node. `npx
 * tagwarden …` runs this same file; `npm run cli -- …` runs src/cli.ts under npm's PATH, whose
 * node_modules/.bin/node is the pinned one.
 */
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'tagwarden.mjs');
const PINNED = realpathSync(join(ROOT, 'node_modules', '.bin', 'node'));

/** A Node on the machine other than the pinned one (this machine's is 20, which cannot run .ts). */
const systemNode = ['/usr/bin/node', '/usr/local/bin/node', '/bin/node'].find((p) => existsSync(p) && realpathSync(p) !== PINNED);
const systemVersion = systemNode === undefined ? undefined : spawnSync(systemNode, ['--version'], { encoding: 'utf8' }).stdout.trim();

describe(`the tagwarden bin under the system Node (${systemNode ?? 'none found'} ${systemVersion ?? ''})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bin-'));
  const store = `sqlite:${join(dir, 'keys.db')}`;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(systemNode === undefined)('creates and lists API keys', () => {
    const created = spawnSync(systemNode!, [BIN, 'keys', 'create', '--scopes', 'consent:read', '--label', 'bin', '--store', store, '--json'], { cwd: dir, encoding: 'utf8' });
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key).toMatchObject({ label: 'bin', scopes: ['consent:read'] });
    const listed = spawnSync(systemNode!, [BIN, 'keys', 'list', '--store', store, '--json'], { cwd: dir, encoding: 'utf8' });
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout).map((k: { id: string }) => k.id)).toEqual([key.id]);
  });

  it.skipIf(systemNode === undefined)('passes on the CLI exit code (2 for a usage error)', () => {
    const r = spawnSync(systemNode!, [BIN, 'keys', 'frobnicate'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tagwarden: unknown command "keys frobnicate"/);
  });

  it('npx tagwarden … runs the bin (offline: npx links this package, it downloads nothing)', () => {
    const r = spawnSync('npx', ['--offline', 'tagwarden', 'keys', 'list', '--store', store, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(Array.isArray(JSON.parse(r.stdout))).toBe(true);
  }, 60_000);

  it('npm run cli -- … runs the CLI (npm puts the pinned Node first on PATH)', () => {
    const r = spawnSync('npm', ['run', '--silent', 'cli', '--', 'keys', 'list', '--store', store, '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(Array.isArray(JSON.parse(r.stdout))).toBe(true);
  });

  it.skipIf(systemNode === undefined)('says to run npm install when the pinned Node is missing', () => {
    const copy = join(dir, 'pkg');
    mkdirSync(join(copy, 'bin'), { recursive: true });
    copyFileSync(BIN, join(copy, 'bin', 'tagwarden.mjs'));
    const r = spawnSync(systemNode!, [join(copy, 'bin', 'tagwarden.mjs'), 'keys', 'list'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`tagwarden: the pinned Node (${join(copy, 'node_modules', '.bin', 'node')}) is missing: run npm install in ${copy}\n`);
  });
});
