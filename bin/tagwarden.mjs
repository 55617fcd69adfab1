#!/usr/bin/env node
// The `tagwarden` command (`npx tagwarden keys create …`): runs src/cli.ts under the Node pinned by
// this package's `node` devDependency, whatever Node started this file. Tagwarden is TypeScript run
// by Node 24's type stripping, so a system Node that cannot run .ts (Node 20 and older) still works.
// Plain JavaScript on purpose: this file itself must run on any Node with ES modules (12.20+).
import { spawn } from 'child_process';
import { existsSync } from 'fs';
import { dirname, join } from 'path';
import { fileURLToPath } from 'url';

// Found from this file's own location (npx and npm link run it through a symlink; Node resolves
// it to the real path), never from PATH or the working directory.
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'node.cmd' : 'node');
const cli = join(root, 'src', 'cli.ts');

if (!existsSync(node)) {
  process.stderr.write(`tagwarden: the pinned Node (${node}) is missing: run npm install in ${root}\n`);
  process.exit(1);
}

const child = spawn(node, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches the whole process group already; a signal sent to this process alone is passed on.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    child.kill(signal);
  });
}
child.on('error', (err) => {
  process.stderr.write(`tagwarden: cannot start ${node}: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal !== null) {
    // Die of the same signal, as a shell expects (its own handler removed first).
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
