/**
 * Baseline for the forward path: a per-hit proxy built the way such proxies usually are, Express 5
 * and http-proxy-middleware. `POST /v1/track`: express.json() parses the Segment event, the body
 * is rewritten to the webhook template's shape (`{"batch":[event]}`, one event per request) and
 * proxied to the sink's `/webhook`, and the sink's answer is the client's answer. So the client
 * waits for the vendor on every hit, and every hit is one vendor request. No validation, consent
 * or retry: when the sink fails, the hit fails.
 *
 *   node bench/servers/naive-proxy.ts --sink http://127.0.0.1:PORT
 *
 * Sockets to the sink: Node 24's global agent (keep-alive, no socket limit), which
 * http-proxy-middleware uses unless told otherwise.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { createServer } from 'node:http';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { arg, exitOnSigterm, reportReady, tieToParent } from './common.ts';

tieToParent();
const sink = arg('sink');

/** The parsed body of each request, read back when the proxy writes the upstream request. */
const bodies = new WeakMap<IncomingMessage, string>();

const app = express();
app.post(
  '/v1/track',
  express.json({ limit: '32kb' }),
  (req, _res, next) => {
    bodies.set(req, JSON.stringify({ batch: [req.body as unknown] }));
    next();
  },
  createProxyMiddleware({
    target: sink,
    changeOrigin: true,
    pathRewrite: () => '/webhook',
    on: {
      // express.json() consumed the stream: write the rewritten body ourselves (http-proxy-middleware's fixRequestBody recipe).
      proxyReq: (proxyReq: ClientRequest, req: IncomingMessage) => {
        const body = bodies.get(req);
        if (body === undefined) return;
        proxyReq.setHeader('content-type', 'application/json');
        proxyReq.setHeader('content-length', Buffer.byteLength(body));
        proxyReq.write(body);
      },
      error: (_err, _req, res) => {
        if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
      },
    },
  }),
);

const server = createServer(app);
server.listen(0, '127.0.0.1', () => reportReady(server));
exitOnSigterm(server);
