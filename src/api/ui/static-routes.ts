import { Router, type Response } from 'express';
import { NotFoundError } from '../../errors.ts';
import { pagePolicy, type StaticFile, type UiFiles } from './static-files.ts';

/**
 * GET /ui (and /ui/): the page; /ui/assets/<path>: the files of ui/; /ui/vendor/<name>: the
 * vendor modules. Each looked up by exact name in what was read at startup (static-files.ts).
 * No authentication: the login form is this page too, and none of them holds data.
 */
export function uiStaticRouter(files: UiFiles): Router {
  const router = Router();
  const policy = pagePolicy(files.index?.scriptHashes ?? []);
  const send = (res: Response, file: StaticFile): void => {
    res.setHeader('content-type', file.type);
    res.send(file.body);
  };

  router.get(['/ui', '/ui/'], (_req, res) => {
    if (files.index === undefined) throw new NotFoundError('the dashboard page (ui/index.html) is not installed');
    res.setHeader('content-security-policy', policy);
    send(res, { body: files.index.body, type: 'text/html; charset=utf-8' });
  });
  for (const [prefix, map] of [
    ['/ui/assets', files.assets],
    ['/ui/vendor', files.vendor],
  ] as const) {
    router.use(prefix, (req, res, next) => {
      // The rest of the path, as sent (still percent-encoded): a key of the map or nothing.
      const file = req.method === 'GET' || req.method === 'HEAD' ? map.get(req.path.slice(1)) : undefined;
      if (file === undefined) next();
      else send(res, file);
    });
  }
  return router;
}
