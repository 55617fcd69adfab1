import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeServer } from '../helpers.ts';

const require = createRequire(import.meta.url);
const packageDir = (name: string): string => dirname(require.resolve(`${name}/package.json`));

/**
 * URL prefix → directory. Only these are served: the test page, analytics-next's whole UMD build
 * (at `/analytics-next/bundles/`, the path its webpack runtime loads its chunks from below the CDN
 * URL, see analytics-next src/browser/browser-umd.ts), and the ES module builds of
 * analytics-consent-tools and its one dependency, loaded unbundled through the page's import map.
 */
const MOUNTS: readonly (readonly [string, string])[] = [
  ['/analytics-next/bundles/', join(packageDir('@segment/analytics-next'), 'dist', 'umd')],
  ['/modules/analytics-consent-tools/', join(packageDir('@segment/analytics-consent-tools'), 'dist', 'esm')],
  ['/modules/analytics-generic-utils/', join(packageDir('@segment/analytics-generic-utils'), 'dist', 'esm')],
  ['/', join(dirname(fileURLToPath(import.meta.url)), 'page')],
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * The page's origin: a static server on 127.0.0.1. The ES module builds import siblings without
 * an extension (`from './logger'`, `from './utils'`: tsc output meant for bundlers), and a browser
 * asks for exactly that URL; a path that is not a file is redirected to `<path>.js`, else to
 * `<path>/index.js`, so that the module's own relative imports resolve against its real URL.
 */
export async function startStaticServer(): Promise<{ url: string; requested: string[]; close: () => Promise<void> }> {
  const requested: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://static').pathname;
    requested.push(path);
    void resolveFile(path).then(async (found) => {
      if (found === undefined || req.method !== 'GET') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const [file, suffix] = found;
      if (suffix !== '') {
        res.writeHead(302, { location: `${path}${suffix}` }).end();
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requested, close: () => closeServer(server) };
}

/** The file a path names, and what to append to the path when it names it without its extension. */
async function resolveFile(path: string): Promise<[string, string] | undefined> {
  const mount = MOUNTS.find(([prefix]) => path.startsWith(prefix));
  if (mount === undefined) return undefined;
  const [prefix, dir] = mount;
  const rel = normalize(decodeURIComponent(path.slice(prefix.length)));
  if (rel.startsWith('..') || rel.includes(`${sep}..`)) return undefined;
  const base = join(dir, rel === '.' ? 'index.html' : rel);
  for (const suffix of ['', '.js', '/index.js']) {
    const s = await stat(`${base}${suffix}`).catch(() => undefined);
    if (s?.isFile() === true) return [`${base}${suffix}`, suffix];
  }
  return undefined;
}
