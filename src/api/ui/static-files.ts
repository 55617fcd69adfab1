import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's files, read once at startup (docs/ui.md): the page and its modules from the
 * repo's ui/ folder, and the vendor libraries from node_modules by a fixed list. Requests are
 * answered from these maps by exact name; no request ever names a path on disk, so there is no
 * path to traverse. No build step, no CDN: what the browser runs is these files as they are.
 */
export interface StaticFile {
  body: Buffer;
  type: string;
}

export interface UiFiles {
  /** ui/index.html and the script-src hashes of its inline import maps; undefined when the file is missing. */
  index: { body: Buffer; scriptHashes: string[] } | undefined;
  /** ui/ files by their path under it (`app.js`, `views/overview.js`), served at /ui/assets/<path>. */
  assets: ReadonlyMap<string, StaticFile>;
  /** Served at /ui/vendor/<name>. */
  vendor: ReadonlyMap<string, StaticFile>;
  /** Files of ui/ left out (a name, type or size not served), with why: logged at startup. */
  skipped: string[];
}

export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

/**
 * Vendor file name → `[package entry, file beside it]`: the file is found next to the entry point
 * that resolves from this package's node_modules (htm's and uPlot's entries resolve to CommonJS for
 * require(), and their packages do not export the ES module files by path). The names are the
 * import map's targets in ui/index.html.
 */
export const VENDOR_FILES: Readonly<Record<string, readonly [string, string?]>> = Object.freeze({
  'preact.mjs': ['preact'],
  'preact-hooks.mjs': ['preact/hooks'],
  'htm.mjs': ['htm', 'htm.mjs'],
  'uplot.mjs': ['uplot', 'uPlot.esm.js'],
  'uplot.css': ['uplot', 'uPlot.min.css'],
});

const TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
});
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const MAX_DEPTH = 3;
const MAX_FILE_BYTES = 2 * 1024 * 1024;
const MAX_TOTAL_BYTES = 16 * 1024 * 1024;
const MAX_FILES = 500;

export function loadUiFiles(dir: string = DEFAULT_UI_DIR): UiFiles {
  const skipped: string[] = [];
  const assets = new Map<string, StaticFile>();
  let total = 0;
  const walk = (rel: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.name.startsWith('.')) continue;
      if (!NAME.test(e.name)) {
        skipped.push(`${path}: not a served name`);
        continue;
      }
      if (e.isDirectory()) {
        if (depth < MAX_DEPTH) walk(path, depth + 1);
        else skipped.push(`${path}: nested too deep`);
        continue;
      }
      // Symbolic links and the like are not followed: only regular files of the folder itself.
      if (!e.isFile()) continue;
      const type = TYPES[extname(e.name).toLowerCase()];
      if (type === undefined || /\.test\.[a-z]+$/.test(e.name)) {
        if (path !== 'index.html') skipped.push(`${path}: not a served type`);
        continue;
      }
      const size = statSync(join(dir, path)).size;
      if (size > MAX_FILE_BYTES || total + size > MAX_TOTAL_BYTES || assets.size >= MAX_FILES) {
        skipped.push(`${path}: over the size bounds`);
        continue;
      }
      total += size;
      assets.set(path, { body: readFileSync(join(dir, path)), type });
    }
  };
  walk('', 0);
  let index: UiFiles['index'];
  try {
    const body = readFileSync(join(dir, 'index.html'));
    index = { body, scriptHashes: importMapHashes(body.toString('utf8')) };
  } catch {
    index = undefined;
  }
  return { index, assets, vendor: loadVendorFiles(), skipped };
}

function loadVendorFiles(): Map<string, StaticFile> {
  const require = createRequire(import.meta.url);
  const vendor = new Map<string, StaticFile>();
  for (const [name, [entry, beside]] of Object.entries(VENDOR_FILES)) {
    const main = require.resolve(entry);
    vendor.set(name, { body: readFileSync(beside === undefined ? main : join(dirname(main), beside)), type: TYPES[extname(name)]! });
  }
  return vendor;
}

/**
 * The CSP source (`'sha256-…'`) of each inline `<script type="importmap">` of the page: the page's
 * CSP allows exactly these inline scripts and no other. The hash is of the text between the tags
 * as written (CSP hashes the element's text), so it follows whatever index.html holds at startup.
 */
export function importMapHashes(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi)) {
    if (!/\btype\s*=\s*["']?importmap["']?/i.test(m[1]!)) continue;
    out.push(`'sha256-${createHash('sha256').update(m[2]!, 'utf8').digest('base64')}'`);
  }
  return out;
}

/** The page's Content-Security-Policy: its own files only, the import map by hash, no framing. */
export function pagePolicy(scriptHashes: readonly string[]): string {
  return [
    "default-src 'self'",
    `script-src 'self'${scriptHashes.map((h) => ` ${h}`).join('')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}
