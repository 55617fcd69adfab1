import { createHash } from 'node:crypto';
import { Router } from 'express';
import { buildOpenApiDocument } from './document.ts';

/**
 * `GET /api/v1/openapi.json`: the OpenAPI document, without an API key (it describes the API, it
 * holds no data). Built once, on first request: the same for the life of the process, so it is
 * cacheable and carries a strong ETag (`If-None-Match` → 304).
 */
export function openApiRouter(): Router {
  const router = Router();
  let built: { body: string; etag: string } | undefined;
  router.get('/api/v1/openapi.json', (req, res) => {
    built ??= (() => {
      const body = JSON.stringify(buildOpenApiDocument());
      return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    })();
    res.setHeader('cache-control', 'public, max-age=3600');
    res.setHeader('etag', built.etag);
    const match = req.headers['if-none-match'];
    if (match !== undefined && match.split(',').some((t) => t.trim() === built!.etag || t.trim() === '*')) {
      res.status(304).end();
      return;
    }
    res.type('application/json').send(built.body);
  });
  return router;
}
