// Baseline for bench/consent-api.ts: a bare Express 5 app answering the verify route with a fixed
// CookieBoss-shaped JSON body. No key check, no store.
import { createServer } from 'node:http';
import express from 'express';
import { exitOnSigterm, reportReady, tieToParent } from './common.ts';

tieToParent();

const answer = { hasConsent: true, categories: { advertising: false, analytics: true }, consentedAt: '2026-03-01T10:00:00.000Z', geoCountry: null };
const app = express();
app.get('/api/v1/public/sites/:siteId/consent/verify', (_req, res) => {
  res.json(answer);
});

const server = createServer(app);
server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
