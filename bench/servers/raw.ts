// Baseline (c): a bare node:http server. POST /v1/track: reads the whole body (no parsing), answers 204.
import { createServer } from 'node:http';
import { exitOnSigterm, reportReady, tieToParent } from './common.ts';

tieToParent();

const server = createServer((req, res) => {
  if (req.method !== 'POST' || (req.url !== '/v1/track' && req.url !== '/g/collect' && req.url !== '/tr')) {
    res.statusCode = 404;
    res.end();
    req.resume();
    return;
  }
  req.on('data', () => {});
  req.on('end', () => {
    res.statusCode = 204;
    res.end();
  });
});

server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
