/**
 * Target for bench/consent-api.ts: Tagwarden with its consent store on a fresh SQLite file
 * (`--store sqlite:<path>`), as src/main.ts composes it. After the ready line it prints one JSON
 * line `{"apiKey": "..."}`: a key with every scope, created in the store before listening.
 */
import { pino } from 'pino';
import { createApiKey } from '../../src/api/keys.ts';
import { createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { loadTemplates } from '../../src/destinations/load.ts';
import { checkDestinations } from '../../src/destinations/resolve.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { openDb } from '../../src/store/open.ts';
import { arg, reportReady, tieToParent } from './common.ts';

tieToParent();
const storeUrl = arg('store');
const templates = loadTemplates();
const config = parseConfig(
  {
    // The schema's longest request time: a 100,000-row import streams its body as fast as the
    // store takes the rows, and on a slow store it outlasts the 30 s default (the answer is a 408).
    server: { host: '127.0.0.1', port: 0, maxHeaderBytes: 16_384, requestTimeoutMs: 300_000 },
    site: { id: 'bench', dataControlMode: 'opt-in', categories: { advertising: {}, analytics: {} } },
    store: { url: storeUrl },
    api: { rateLimit: { perSecond: 100_000, burst: 100_000 } },
    log: { level: 'warn' },
  },
  { env: {}, extraChecks: (raw) => checkDestinations(raw, templates) },
  'bench config',
);
const db = await openDb(storeUrl);
const { key } = await createApiKey(db, { label: 'bench', scopes: ['admin'] });
const app = createApp(config, { logger: createLogger(config.log.level, pino.destination({ dest: 2, sync: false })), templates, db });
const server = createHttpServer(config.server, app.handler);
server.listen(0, '127.0.0.1', () => {
  reportReady(server);
  process.stdout.write(`${JSON.stringify({ apiKey: key })}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void app
    .shutdown(2000)
    .then(() => db.close())
    .then(() => process.exit(0));
});
