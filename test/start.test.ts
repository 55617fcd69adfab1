import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer } from './helpers.ts';

/**
 * A new user's first start, as `npm start` does it: the real process (src/main.ts) under the
 * pinned Node of node_modules/.bin/node, a config file, the environment a platform gives it.
 */
const ROOT = join(import.meta.dirname, '..');
const PINNED_NODE = join(ROOT, 'node_modules', '.bin', 'node');

describe('starting the server process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-start-'));
  let taken: Server;
  let takenPort: number;
  let fakeCdn: Server;
  let cdnUrl: string;

  beforeAll(async () => {
    taken = createServer((_req, res) => res.end());
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    takenPort = (taken.address() as AddressInfo).port;
    fakeCdn = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/javascript' });
      res.end('/* fbevents */');
    });
    fakeCdn.listen(0, '127.0.0.1');
    await once(fakeCdn, 'listening');
    cdnUrl = `http://127.0.0.1:${(fakeCdn.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await closeServer(taken);
    await closeServer(fakeCdn);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A config on the taken port, so a start that works proves PORT won. */
  function configFile(name: string, extra: Record<string, unknown> = {}): string {
    const file = join(dir, `${name}.json`);
    const config = {
      server: { host: '127.0.0.1', port: takenPort },
      site: { id: 'shop', categories: { analytics: {} } },
      store: { url: `sqlite:${join(dir, `${name}.db`)}` },
      scripts: { enabled: true, origins: { meta: cdnUrl } },
      ...extra,
    };
    writeFileSync(file, JSON.stringify(config));
    return file;
  }

  /** Runs the server with only the given environment (no PORT, NODE_OPTIONS… from the test run's). */
  function start(config: string, env: Record<string, string>): { child: ChildProcess; stdout: () => string; stderr: () => string } {
    const child = spawn(PINNED_NODE, ['src/main.ts', '--config', config], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return { child, stdout: () => out, stderr: () => err };
  }

  it('listens on PORT from the environment, serves /healthz and a proxied script, and prints no warning', async () => {
    const run = start(configFile('ok'), { PORT: '0' });
    const port = await new Promise<number>((resolve, reject) => {
      run.child.stdout!.on('data', () => {
        const m = /"port":(\d+)/.exec(run.stdout());
        if (m) resolve(Number(m[1]));
      });
      run.child.once('exit', (code) => reject(new Error(`tagwarden exited early (${code}): ${run.stderr()}`)));
    });
    try {
      expect(port).not.toBe(takenPort);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      // The script proxy (http-proxy-middleware) has run a request: where util._extend warned in v3.
      const script = await fetch(`http://127.0.0.1:${port}/en_US/fbevents.js`);
      expect(script.status).toBe(200);
      expect(await script.text()).toBe('/* fbevents */');
    } finally {
      run.child.kill('SIGTERM');
      await once(run.child, 'exit');
    }
    expect(run.stderr()).not.toMatch(/DeprecationWarning|Warning:/);
    expect(run.stderr()).toBe('');
  });

  it('a busy port prints one line and exits 1, no stack trace', async () => {
    const run = start(configFile('busy'), {});
    const [code] = (await once(run.child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(run.stderr()).toBe(`tagwarden: port ${takenPort} is already in use (set PORT or server.port)\n`);
    expect(run.stdout()).not.toContain('listening');
  });
});
