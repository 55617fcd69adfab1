// Baseline (b): a bare Express 5 app. POST /v1/track: express.json() parses the body, then 204. No validation, no consent, no delivery.
import { createServer } from 'node:http';
import express from 'express';
import { exitOnSigterm, reportReady, tieToParent } from './common.ts';

tieToParent();

const app = express();
app.post('/v1/track', express.json({ limit: '32kb' }), (_req, res) => {
  res.status(204).end();
});
// The same for the GA4 and Meta pixel hits (bench --client ga4|pixel): parse the body, answer 204.
app.post('/g/collect', express.text({ type: () => true, limit: '512kb' }), (_req, res) => {
  res.status(204).end();
});
app.post('/tr', express.urlencoded({ extended: false, limit: '32kb' }), (_req, res) => {
  res.status(204).end();
});

const server = createServer(app);
server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
