/**
 * `/tr` on the fast path (src/ingest/fast-path.ts): an image request (GET), or a POST of a body
 * /tr reads (a form, beacon text or multipart/form-data) within the limit, is answered here exactly
 * as meta-pixel-routes.ts answers it (pixelAnswers, readPixelBody); anything else, and a body that
 * cannot be read, is passed to the Express route with what was read.
 */
import { clientIp } from '../http/client-ip.ts';
import { answerWithBody, type FastHandler, type HitFastPathOptions } from './fast-path.ts';
import { pixelBodyReadable, preloadPixelBody, readPixelBody } from './meta-pixel-body.ts';
import { pixelAnswers, type MetaPixelRouteOptions } from './meta-pixel-routes.ts';

export function metaPixelFastRoutes(opts: HitFastPathOptions & Pick<MetaPixelRouteOptions, 'maxBytes' | 'refusals'>): Map<string, FastHandler> {
  const { answerGet, answerPost } = pixelAnswers(opts);
  const handler: FastHandler = (req, res, query, pass) => {
    if (req.method === 'GET') {
      try {
        answerGet(req, clientIp(req, opts.trustProxyHops), res, query);
      } catch {
        pass(); // refused (shutdown began): the Express route gives the answer
      }
      return;
    }
    if (req.method !== 'POST' || !pixelBodyReadable(req)) {
      pass();
      return;
    }
    answerWithBody<{ params: URLSearchParams }>(
      (done) => readPixelBody(req, opts.maxBytes, done),
      (outcome) => preloadPixelBody(req, outcome),
      opts.accepting,
      pass,
      (body) => answerPost(req, clientIp(req, opts.trustProxyHops), res, query, body),
    );
  };
  return new Map([
    ['/tr', handler],
    ['/tr/', handler],
  ]);
}
