// Plain JS so ESLint loads it without a TypeScript loader. Type-aware lint: floating promises and misused promises are errors, because an
// unawaited delivery or store write is exactly how acknowledged events get lost.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------------
// Import boundaries between the parts of src/ (the table in docs/architecture.md). Each part lists
// what it must never import, as `no-restricted-imports` patterns on the import string as written:
// `**/store/**` matches `../store/db.ts` and `../../store/types.ts`; a `!` entry re-allows a file.
// ESLint keeps one `no-restricted-imports` setting per file: the last block that matches wins. So a
// nested set (the ingest parsers, api/explain*.ts) comes after its part's block with the full list
// of its own rules.
// Tests (`*.test.ts`, `test-helpers.ts`, test/) may reach across parts: they are not checked.
// Dynamic `import()` is not checked by this rule; src/ uses none.

/** Packages by exact name (a subpath such as `undici/types` included). */
const packages = (names) => ({ regex: `^(${names.map((n) => n.replace(/[/.]/g, '\\$&')).join('|')})(/|$)` });
const parts = (...names) => names.map((n) => `**/${n}/**`);
const PIPELINE = ['**/pipeline/**', '**/pipeline.ts'];
const ALL_PARTS = ['config', 'ingest', 'identity', 'consent', 'policy', 'destinations', 'delivery', 'proxy', 'store', 'api', 'http', 'observability', 'pipeline', 'receipts', 'cluster'];
// http/ modules that only read a request header and write nothing: consent/, identity/ and the pipeline may use them.
const HEADER_READERS = ['!**/http/cookies.ts', '!**/http/client-ip.ts'];
const HTTP_PACKAGES = ['express', 'undici', 'http-proxy-middleware', 'busboy', 'node:http', 'node:https', 'node:http2'];

/** src/lib/ is open to every part, and its folders (lib/http/) are not the parts of the same name. */
const openLib = (pattern) => (pattern.group === undefined ? pattern : { ...pattern, group: [...pattern.group, '!**/lib/**'] });

/**
 * A part's "never" rules: `[id, why, pattern]` each, `id` naming the entry for the allow-list. Every
 * message starts with the rule's name ("policy is pure: …"). Every part also never imports the
 * composition root or the entry points.
 */
const boundary = (rule, entries) => [
  ...entries.map(([id, why, pattern]) => ({ id, message: `${rule}: ${why}`, ...openLib(pattern) })),
  { id: 'roots', message: `${rule}: only main.ts imports app.ts; nothing imports main.ts or cli.ts.`, group: ['**/app.ts', '**/main.ts', '**/cli.ts'] },
];

/** The rules of a part minus the waived ones (by id), for a nested set with more rights. */
const waive = (rules, ...ids) => rules.filter((r) => !ids.includes(r.id));

const lib = boundary('lib is the shared kernel', [
  // Anchored after the leading `../` run: lib's own folders (lib/http/) share names with parts.
  ['lib', 'it imports no other part of src/ (only node:*, undici and src/errors.ts).', { regex: `^(\\.\\./)+(${ALL_PARTS.join('|')})(/|\\.ts$)` }],
  ['lib-packages', 'its only packages are node:* and undici.', { regex: '^(?!node:|undici(/|$)|\\.)' }],
]);

const policy = boundary('policy is pure', [
  ['policy', 'it decides from its arguments: no store/, delivery/, http/, api/, ingest/, proxy/, identity/, config/, observability/ or pipeline.', {
    group: [...parts('store', 'delivery', 'http', 'api', 'ingest', 'proxy', 'identity', 'config', 'observability'), ...PIPELINE],
  }],
  ['policy-consent-types', 'from consent/ it imports types only (no TCF decoder, no cache).', { group: parts('consent'), allowTypeImports: true }],
  ['policy-destinations-types', 'from destinations/ only the types of destinations/types.ts.', { group: ['**/destinations/**', '!**/destinations/types.ts'] }],
  ['policy-destinations-types', 'from destinations/ only the types of destinations/types.ts.', { group: ['**/destinations/types.ts'], allowTypeImports: true }],
  ['policy-packages', 'no packages and no node: modules (no decoder, no lru-cache, no I/O).', { regex: '^(?!\\.)' }],
]);

const store = boundary('storage knows no HTTP and no policy', [
  ['store', 'no http/, api/, policy/, ingest/, delivery/, proxy/ or pipeline (callers hand it plain values).', {
    group: [...parts('http', 'api', 'policy', 'ingest', 'delivery', 'proxy'), ...PIPELINE],
  }],
  ['store-packages', 'no express, undici or node:http.', packages(HTTP_PACKAGES)],
  // A receipt's shape, never its composition (which reads policy/ reason texts).
  ['store-receipts', 'from receipts/ it imports types only.', { group: parts('receipts'), allowTypeImports: true }],
]);
// Decision receipts: what a settled decision saw, buffered and written to the store. The pipeline
// and app.ts hand them in; the API reads them back through store/receipts.ts.
const receipts = boundary('receipts know no HTTP', [
  ['receipts', 'no api/, http/, proxy/, destinations/, identity/, ingest routes (from ingest/ only event.ts) or pipeline.', {
    group: [...parts('api', 'http', 'proxy', 'destinations', 'identity', 'ingest'), ...PIPELINE, '!**/ingest/event.ts'],
  }],
  ['receipts-types', 'from consent/ and delivery/ types only (a receipt records signals and results, it resolves and sends nothing).', { group: parts('consent', 'delivery'), allowTypeImports: true }],
  ['receipts-packages', 'no express, undici or node:http.', packages(HTTP_PACKAGES)],
]);

// Whatever reads a request (routes, the router, body readers) may import http/ and observability/.
const ingest = boundary('ingest hands hits to the pipeline', [
  ['ingest', 'through hit-sink.ts: no store/, delivery/, policy/, api/, destinations/.', { group: parts('store', 'delivery', 'policy', 'api', 'destinations') }],
]);
// The parsers: request text in, canonical Event out (meta-pixel-body.ts reads the request: it is route side).
const PARSERS = ['src/ingest/event.ts', 'src/ingest/segment.ts', 'src/ingest/segment-fast.ts', 'src/ingest/segment-limits.ts', 'src/ingest/ga4.ts', 'src/ingest/meta-pixel.ts', 'src/ingest/digest.ts'];
const parsers = boundary('parsers only parse', [
  ['parsers', 'no store/, delivery/, policy/, consent/, pipeline, api/, destinations/, http/, observability/ (the routes read the request and log).', {
    group: [...parts('store', 'delivery', 'policy', 'consent', 'api', 'destinations', 'http', 'observability', 'proxy', 'config'), ...PIPELINE],
  }],
  ['parsers-packages', 'no HTTP, database, cache or file packages.', packages([...HTTP_PACKAGES, 'pg', 'node:fs', 'node:net', 'lru-cache'])],
]);

const consent = boundary('consent resolution knows no vendors', [
  ['consent', 'no destinations/ (templates, mapping), delivery/, api/, policy/, proxy/, pipeline or ingest routes (from ingest/ only event.ts).', {
    group: [...parts('destinations', 'delivery', 'api', 'policy', 'proxy', 'ingest'), ...PIPELINE, '!**/ingest/event.ts'],
  }],
  ['consent-http', 'it writes no HTTP: from http/ only the header readers (cookies.ts, client-ip.ts); outbound calls go through src/lib.', { group: ['**/http/**', ...HEADER_READERS] }],
  ['consent-packages', 'it serves no HTTP: no express, no node:http.', packages(['express', 'http-proxy-middleware', 'node:http', 'node:https'])],
  // A dispatcher may be handed through (its type); the requests themselves go through src/lib/http.
  ['consent-packages', 'it sends through src/lib (the outbound sender): undici types only.', { ...packages(['undici']), allowTypeImports: true }],
]);

const destinations = boundary('destinations render, they do not send', [
  ['destinations', 'no delivery/, store/, api/, http/, proxy/ or pipeline.', { group: [...parts('delivery', 'store', 'api', 'http', 'proxy'), ...PIPELINE] }],
  ['destinations-consent', 'consent types only, never the consent runtime.', { group: parts('consent'), allowTypeImports: true }],
  ['destinations-ingest', 'from ingest/ only the Event (event.ts): hashing and normalising belong to destinations/ or lib/.', { group: ['**/ingest/**', '!**/ingest/event.ts'] }],
  ['destinations-packages', 'no undici, express, pg.', packages(['undici', 'express', 'pg', 'node:http', 'node:https'])],
]);

const delivery = boundary('delivery sends what was decided', [
  ['delivery', 'no policy/, api/, http/, proxy/, pipeline or ingest routes (from ingest/ only event.ts).', {
    group: [...parts('policy', 'api', 'http', 'proxy', 'ingest'), ...PIPELINE, '!**/ingest/event.ts'],
  }],
  ['delivery-packages', 'it serves no HTTP: no express.', packages(['express', 'http-proxy-middleware'])],
]);

const identity = boundary('identity reads ids', [
  ['identity', 'it writes no HTTP responses (from http/ only the header readers cookies.ts, client-ip.ts) and never touches store/; no api/, delivery/, policy/, destinations/, proxy/, pipeline.', {
    group: [...parts('store', 'http', 'api', 'delivery', 'policy', 'destinations', 'proxy'), ...PIPELINE, ...HEADER_READERS],
  }],
  ['identity-packages', 'no express or undici (types from node:http are fine).', packages(['express', 'undici'])],
]);

// /debug/explain runs hits through the pipeline and shows the decisions (sending nothing): the only
// api/ files that import the pipeline and policy/ (its reason texts).
const API_EXPLAIN = ['src/api/explain.ts', 'src/api/explain-hit.ts'];
const api = boundary('the API reads and writes the store and consent', [
  ['api', 'it serves no scripts (no proxy/).', { group: parts('proxy') }],
  ['api-pipeline', 'only /debug/explain (api/explain*.ts) runs the pipeline and reads policy/.', { group: [...parts('policy'), ...PIPELINE] }],
]);
const apiExplain = waive(api, 'api-pipeline');

const pipeline = boundary('the pipeline runs a hit through the parts', [
  ['pipeline', 'the routes call it: no api/, no http/ but the header readers.', { group: [...parts('api', 'http'), ...HEADER_READERS] }],
  ['pipeline-store', 'it reaches the store through consent/ and delivery/: store types only.', { group: parts('store'), allowTypeImports: true }],
  ['pipeline-routes', 'no ingest routes (from ingest/ the parsers, event.ts and hit-sink.ts).', { group: ['**/ingest/*-routes.ts', '**/ingest/router*.ts'] }],
]);

const observability = boundary('observability is a leaf', [
  ['observability', 'logs, metrics and masking: no store/, api/, http/, pipeline, delivery/, policy/, consent/, ingest/, identity/, proxy/.', {
    group: [...parts('store', 'api', 'http', 'delivery', 'policy', 'consent', 'ingest', 'identity', 'proxy'), ...PIPELINE],
  }],
]);

const config = boundary('config parses and checks the YAML', [
  ['config', 'it imports no other part (src/lib and src/errors.ts only).', { group: [...parts(...ALL_PARTS.filter((n) => n !== 'config')), '**/pipeline.ts'] }],
]);

const proxy = boundary('the script proxy serves vendor scripts', [
  ['proxy', 'no store/, policy/, consent/, delivery/, destinations/, api/, ingest/ or pipeline.', {
    group: [...parts('store', 'policy', 'consent', 'delivery', 'destinations', 'api', 'ingest'), ...PIPELINE],
  }],
]);

// HTTP transport: the server, body readers, CORS, error answers. It carries hits; it knows no consent, vendor or storage.
const http = boundary('http/ is transport', [
  ['http', 'no store/, policy/, consent/, destinations/, delivery/ or pipeline (the routes and app.ts bring them).', {
    group: [...parts('store', 'policy', 'consent', 'destinations', 'delivery'), ...PIPELINE],
  }],
]);

// The supervisor and its IPC (server.workers): processes and messages; the app is main.ts's to build.
const clusterPart = boundary('cluster/ supervises processes', [
  ['cluster', 'it runs no hit and serves no request: no api/, http/, pipeline, delivery/, policy/, consent/, ingest/, identity/, destinations/, proxy/, receipts/, preview/; store/ types only.', {
    group: [...parts('api', 'http', 'delivery', 'policy', 'consent', 'ingest', 'identity', 'destinations', 'proxy', 'receipts', 'preview'), ...PIPELINE],
  }],
  ['cluster-store', 'store types only (the ChangeRelay it carries).', { group: parts('store'), allowTypeImports: true }],
]);

const NOT_CHECKED = ['**/*.test.ts', '**/test-helpers.ts'];
const block = (files, rules) => ({
  files,
  ignores: NOT_CHECKED,
  rules: { 'no-restricted-imports': ['error', { patterns: rules.map(({ id: _id, ...pattern }) => pattern) }] },
});

const importBoundaries = [
  block(['src/lib/**'], lib),
  block(['src/policy/**'], policy),
  block(['src/store/**'], store),
  block(['src/receipts/**'], receipts),
  block(['src/ingest/**'], ingest),
  block(PARSERS, parsers),
  block(['src/consent/**'], consent),
  block(['src/destinations/**'], destinations),
  block(['src/delivery/**'], delivery),
  block(['src/identity/**'], identity),
  block(['src/api/**'], api),
  block(API_EXPLAIN, apiExplain),
  block(['src/pipeline/**', 'src/pipeline.ts'], pipeline),
  block(['src/observability/**'], observability),
  block(['src/config/**'], config),
  block(['src/proxy/**'], proxy),
  block(['src/http/**'], http),
  block(['src/cluster/**'], clusterPart),
];
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Whatever reaches a client or an operator carries a stable TW_ERR_* code.
const BARE_ERROR = {
  selector: "NewExpression[callee.name='Error'], CallExpression[callee.name='Error']",
  message: 'Throw one of the TW_ERR_* family (src/errors.ts, docs/errors.md); InternalError for a broken invariant.',
};
// Time and timers come from the injected Clock (src/lib/clock.ts), so tests drive them (FakeClock).
const WALL_CLOCK = [
  {
    selector: "MemberExpression[object.name='Date'][property.name='now'], NewExpression[callee.name='Date'][arguments.length=0]",
    message: 'Read the time from the injected Clock (src/lib/clock.ts), not Date.now() / new Date().',
  },
  {
    selector: "CallExpression[callee.name=/^set(Timeout|Interval)$/], CallExpression[callee.object.name='globalThis'][callee.property.name=/^set(Timeout|Interval)$/]",
    message: 'Arm timers on the injected Clock (src/lib/clock.ts, every() in src/lib/every.ts), not the global setTimeout/setInterval.',
  },
];
// The clock itself and the process entry point read the wall clock.
const CLOCK_FILES = ['src/lib/**', 'src/main.ts'];
// ---------------------------------------------------------------------------------------------

export default tseslint.config(
  { ignores: ['node_modules/**', 'coverage/**', 'data/**', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read the environment only in src/config/.' }],
    },
  },
  {
    // The bin is plain JavaScript for old Node versions, outside the TypeScript project: no type-aware rules.
    files: ['bin/**'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { parserOptions: { projectService: false, project: false }, globals: { process: 'readonly' } },
  },
  {
    // The dashboard (ui/) is browser code served as it is (plain ES modules, JSDoc types, no build
    // step), outside the TypeScript project: no type-aware rules, the browser's globals.
    files: ['ui/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'module',
      parserOptions: { projectService: false, project: false },
      globals: Object.fromEntries(
        [
          'window', 'document', 'location', 'history', 'navigator', 'console', 'fetch', 'Response', 'Headers', 'URL', 'URLSearchParams',
          'AbortController', 'AbortSignal', 'DOMException', 'TextDecoderStream', 'ResizeObserver', 'Intl', 'Event', 'HTMLElement',
          'HTMLInputElement', 'HTMLSelectElement', 'HTMLDivElement', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
          'addEventListener', 'removeEventListener', 'requestAnimationFrame',
        ].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['src/config/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  // One error family, and time from the injected Clock: `no-restricted-syntax` in src/ outside tests.
  // One setting per file (the last matching block wins), so the clock's own files repeat the error rule.
  {
    files: ['src/**/*.ts'],
    ignores: [...NOT_CHECKED, ...CLOCK_FILES],
    rules: { 'no-restricted-syntax': ['error', BARE_ERROR, ...WALL_CLOCK] },
  },
  {
    files: CLOCK_FILES,
    ignores: NOT_CHECKED,
    rules: { 'no-restricted-syntax': ['error', BARE_ERROR] },
  },
  {
    // The one test file that reads the environment: TEST_DATABASE_URL picks the PostgreSQL under test.
    files: ['test/test-database.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['**/*.test.ts', 'test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // Import boundaries (defined above).
  ...importBoundaries,
);
