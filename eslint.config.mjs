// Plain JS so ESLint loads it without a TypeScript loader. Type-aware lint: floating promises and misused promises are errors, because an
// unawaited delivery or store write is exactly how acknowledged events get lost.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------------
// Import boundaries between the parts of src/ (the table in docs/architecture.md). Each part lists
// what it must never import, as `no-restricted-imports` patterns on the import string as written:
// `**/store/**` matches `../store/db.ts` and `../../store/types.ts`; a `!` entry re-allows a file.
// ESLint keeps one `no-restricted-imports` setting per file (the last block that matches wins), so
// a file is matched by exactly one part block below: nested sets (the ingest parsers) repeat their
// part's rules, and the allow-list blocks at the end repeat a part's rules minus the one they waive.
// Tests (`*.test.ts`, `test-helpers.ts`, test/) may reach across parts: they are not checked.
// Dynamic `import()` is not checked by this rule; src/ uses none.

/** A "never" rule: `id` names it for the allow-list; the rest is a `no-restricted-imports` pattern. */
const never = (id, message, pattern) => ({ id, message, ...pattern });
const parts = (...names) => names.map((n) => `**/${n}/**`);
/** Packages by exact name (a subpath such as `undici/types` included). */
const packages = (names) => ({ regex: `^(${names.map((n) => n.replace(/[/.]/g, '\\$&')).join('|')})(/|$)` });
/** Nothing imports the composition root or the entry points. */
const roots = never('roots', 'only main.ts imports app.ts; nothing imports main.ts or cli.ts.', { group: ['**/app.ts', '**/main.ts', '**/cli.ts'] });
/** The pipeline is run by app.ts (and /debug/explain): the parts it calls do not call it back. */
const noPipeline = (part) => never('pipeline', `${part} never imports the pipeline: the pipeline calls it, not the other way round.`, { group: ['**/pipeline/**', '**/pipeline.ts'] });

const NODE_IO = ['node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:https', 'node:http2', 'node:dns', 'node:dgram', 'node:tls', 'node:child_process', 'node:worker_threads', 'node:sqlite', 'node:stream'];
const HTTP_PACKAGES = ['express', 'undici', 'http-proxy-middleware', 'busboy', 'node:http', 'node:https', 'node:http2'];

const lib = [
  never('lib', 'lib is the shared kernel: it imports no other part of src/ (only node:*, undici and src/errors.ts).', {
    group: [...parts('config', 'ingest', 'identity', 'consent', 'policy', 'destinations', 'delivery', 'proxy', 'store', 'api', 'http', 'observability', 'pipeline'), '**/pipeline.ts'],
  }),
  never('lib-packages', 'lib is the shared kernel: its only packages are node:* and undici.', { regex: '^(?!node:|undici(/|$)|\\.)' }),
  roots,
];

const policy = [
  never('policy', 'policy is pure: it decides from its arguments, so no store, delivery, HTTP, API, ingest, proxy, identity, config or observability.', {
    group: parts('store', 'delivery', 'http', 'api', 'ingest', 'proxy', 'identity', 'config', 'observability'),
  }),
  never('policy-consent-types', 'policy is pure: from consent/ it imports types only (no TCF decoder, no cache); the caller decodes.', { group: parts('consent'), allowTypeImports: true }),
  never('policy-destinations-types', 'policy is pure: from destinations/ it imports types from destinations/types.ts only.', {
    group: ['**/destinations/**', '!**/destinations/types.ts'],
  }),
  never('policy-destinations-types', 'policy is pure: from destinations/ it imports types only.', { group: ['**/destinations/types.ts'], allowTypeImports: true }),
  never('policy-packages', 'policy is pure: no packages and no node: modules (no decoder, no lru-cache, no I/O).', { regex: '^(?!\\.)' }),
  noPipeline('policy'),
  roots,
];

const store = [
  never('store', 'storage knows no HTTP and no policy: no http/, api/, policy/, ingest/, delivery/, proxy/ (callers hand it plain values).', {
    group: parts('http', 'api', 'policy', 'ingest', 'delivery', 'proxy'),
  }),
  never('store-packages', 'storage knows no HTTP: no express, undici or node:http.', packages(HTTP_PACKAGES)),
  noPipeline('store'),
  roots,
];

// Whatever reads a request (routes, the router, body readers) may import http/ and observability/.
const ingest = [
  never('ingest', 'ingest reads hits and hands them to the pipeline (hit-sink.ts): no store/, delivery/, policy/, api/, destinations/.', {
    group: parts('store', 'delivery', 'policy', 'api', 'destinations'),
  }),
  roots,
];
// The parsers: request text in, canonical Event out.
const PARSERS = ['src/ingest/event.ts', 'src/ingest/segment.ts', 'src/ingest/segment-fast.ts', 'src/ingest/ga4.ts', 'src/ingest/meta-pixel.ts', 'src/ingest/digest.ts'];
const parsers = [
  ...ingest,
  never('parsers', 'parsers only parse: no consent/, pipeline/, http/ or observability/ (the routes read the request and log).', {
    group: [...parts('consent', 'pipeline', 'http', 'observability', 'proxy', 'config'), '**/pipeline.ts'],
  }),
  never('parsers-packages', 'parsers only parse: no HTTP, database or file packages.', packages([...HTTP_PACKAGES, 'pg', 'node:fs', 'node:net', 'lru-cache'])),
];

const consent = [
  never('consent', 'consent resolution knows no vendors: no destinations/ (templates, mapping), delivery/, api/, policy/, proxy/, ingest routes.', {
    group: [...parts('destinations', 'delivery', 'api', 'policy', 'proxy', 'ingest'), '!**/ingest/event.ts'],
  }),
  never('consent-http', 'consent resolution writes no HTTP: from http/ only the header reader cookies.ts; outbound calls go through src/lib.', {
    group: ['**/http/**', '!**/http/cookies.ts'],
  }),
  never('consent-packages', 'consent resolution writes no HTTP: no express; undici only through src/lib (outbound sender).', packages(['express', 'undici', 'http-proxy-middleware', 'node:http', 'node:https'])),
  noPipeline('consent'),
  roots,
];

const destinations = [
  never('destinations', 'destinations render vendor requests; they never import delivery/, store/, api/, http/, proxy/, pipeline/.', {
    group: [...parts('delivery', 'store', 'api', 'http', 'proxy', 'pipeline'), '**/pipeline.ts'],
  }),
  never('destinations-consent', 'destinations use consent types only, never the consent runtime.', { group: parts('consent'), allowTypeImports: true }),
  never('destinations-packages', 'destinations render requests, they do not send them: no undici, express, pg.', packages(['undici', 'express', 'pg', 'node:http', 'node:https'])),
  roots,
];

const delivery = [
  never('delivery', 'delivery sends what was decided: it never imports policy/, api/, http/, proxy/, pipeline/ or ingest routes (from ingest/ only event.ts).', {
    group: [...parts('policy', 'api', 'http', 'proxy', 'pipeline', 'ingest'), '**/pipeline.ts', '!**/ingest/event.ts'],
  }),
  never('delivery-packages', 'delivery never serves HTTP: no express.', packages(['express', 'http-proxy-middleware'])),
  roots,
];

const identity = [
  never('identity', 'identity reads ids; it never writes HTTP responses (from http/ only the header reader cookies.ts) and never touches store/.', {
    group: [...parts('store', 'http', 'api', 'delivery', 'policy', 'destinations', 'proxy'), '!**/http/cookies.ts'],
  }),
  never('identity-packages', 'identity never serves HTTP: no express (types from node:http are fine).', packages(['express', 'undici'])),
  noPipeline('identity'),
  roots,
];

const api = [
  never('api', 'the API reads and writes the store and consent; it never decides (no policy/) and serves no scripts (no proxy/).', { group: parts('policy', 'proxy') }),
  roots,
];
// /debug/explain runs hits through the pipeline and sends nothing: the only api/ files that import it.
const apiNoPipeline = [...api, never('api-pipeline', 'only /debug/explain (api/explain*.ts) runs the pipeline.', { group: ['**/pipeline/**', '**/pipeline.ts'] })];

const pipeline = [
  never('pipeline', 'the pipeline runs a hit through the parts; it never imports api/ or http/ (the routes call it).', { group: parts('api', 'http') }),
  never('pipeline-store', 'the pipeline reaches the store through consent/ and delivery/: store types only.', { group: parts('store'), allowTypeImports: true }),
  never('pipeline-routes', 'the pipeline never imports the ingest routes (from ingest/ the parsers, event.ts and hit-sink.ts).', {
    group: ['**/ingest/*-routes.ts', '**/ingest/*fast-path.ts', '**/ingest/router*.ts'],
  }),
  roots,
];

const observability = [
  never('observability', 'observability (logs, metrics, masking) is a leaf: no store/, api/, http/, pipeline/, delivery/, policy/, consent/, ingest/, proxy/.', {
    group: [...parts('store', 'api', 'http', 'pipeline', 'delivery', 'policy', 'consent', 'ingest', 'proxy', 'identity'), '**/pipeline.ts'],
  }),
  roots,
];

const config = [
  never('config', 'config parses and checks the YAML: it imports no other part (src/lib and src/errors.ts only).', {
    group: [...parts('ingest', 'identity', 'consent', 'policy', 'destinations', 'delivery', 'proxy', 'store', 'api', 'http', 'observability', 'pipeline'), '**/pipeline.ts'],
  }),
  roots,
];

const proxy = [
  never('proxy', 'the script proxy serves vendor scripts: no store/, policy/, consent/, delivery/, destinations/, api/, ingest/, pipeline/.', {
    group: [...parts('store', 'policy', 'consent', 'delivery', 'destinations', 'api', 'ingest', 'pipeline'), '**/pipeline.ts'],
  }),
  roots,
];

// HTTP transport: the server, body readers, CORS, error answers. It carries hits; it knows no consent, vendor or storage.
const http = [
  never('http', 'http/ is transport: it knows no store/, policy/, consent/, destinations/, delivery/ or pipeline/ (the routes and app.ts bring them).', {
    group: [...parts('store', 'policy', 'consent', 'destinations', 'delivery', 'pipeline'), '**/pipeline.ts'],
  }),
  roots,
];

const NOT_CHECKED = ['**/*.test.ts', '**/test-helpers.ts'];
const block = (files, rules, ignores = []) => ({
  files,
  ignores: [...NOT_CHECKED, ...ignores],
  rules: { 'no-restricted-imports': ['error', { patterns: rules.map(({ id: _id, ...pattern }) => pattern) }] },
});
/** The rules of a part minus the waived ones (by id), for the allow-list. */
const waive = (rules, ...ids) => rules.filter((r) => !ids.includes(r.id));

// TEMPORARY allow-list of today's violations in files other helpers are rewriting for issue 12.
// Each entry is the file, its part's rules minus the waived ones, and what removes it.
const ALLOWED = [
  // TODO(issue 12): removed when the pipeline helper lands (policy gets decoded TCF results; no decoder, no lru-cache).
  { files: ['src/policy/decide.ts'], rules: waive(policy, 'policy-consent-types') },
  // TODO(issue 12): removed when the outbound helper lands (verify client sends through the src/lib sender).
  { files: ['src/consent/upstream/verify-client.ts'], rules: waive(consent, 'consent-packages') },
  // TODO(issue 12): removed when the lead moves RETRY_SAFE_FAILURES / RetrySafeFailure to destinations/types.ts (delivery imports it from there).
  { files: ['src/destinations/load.ts', 'src/destinations/template-schema.ts', 'src/destinations/types.ts'], rules: waive(destinations, 'destinations') },
];
const allowedFiles = ALLOWED.flatMap((a) => a.files);

const importBoundaries = [
  block(['src/lib/**'], lib),
  block(['src/policy/**'], policy, allowedFiles),
  block(['src/store/**'], store, allowedFiles),
  block(['src/ingest/**'], ingest, [...allowedFiles, ...PARSERS]),
  block(PARSERS, parsers, allowedFiles),
  block(['src/consent/**'], consent, allowedFiles),
  block(['src/destinations/**'], destinations, allowedFiles),
  block(['src/delivery/**'], delivery, allowedFiles),
  block(['src/identity/**'], identity, allowedFiles),
  block(['src/api/**'], apiNoPipeline, ['src/api/explain.ts', 'src/api/explain-hit.ts']),
  block(['src/api/explain.ts', 'src/api/explain-hit.ts'], api),
  block(['src/pipeline/**', 'src/pipeline.ts'], pipeline, allowedFiles),
  block(['src/observability/**'], observability),
  block(['src/config/**'], config),
  block(['src/proxy/**'], proxy),
  block(['src/http/**'], http, allowedFiles),
  ...ALLOWED.map((a) => block(a.files, a.rules)),
];
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
    files: ['src/config/**'],
    rules: { 'no-restricted-properties': 'off' },
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
