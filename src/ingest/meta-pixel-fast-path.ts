/**
 * `/tr` on the fast path (src/ingest/fast-path.ts): an image request (GET), or a POST of a readable
 * form within the limit, is answered here exactly as meta-pixel-routes.ts answers it
 * (pixelAnswers); anything else, and an oversized body, is passed to the Express route.
 */
import { clientIp } from '../http/client-ip.ts';
import { answerWithText, type FastHandler, type HitFastPathOptions } from './fast-path.ts';
import { pixelAnswers, readableForm, type MetaPixelRouteOptions } from './meta-pixel-routes.ts';

export function metaPixelFastRoutes(opts: HitFastPathOptions & Pick<MetaPixelRouteOptions, 'maxBytes'>): Map<string, FastHandler> {
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
    if (req.method !== 'POST' || !readableForm(req)) {
      pass();
      return;
    }
    answerWithText(req, opts.maxBytes, opts.accepting, pass, (text) => answerPost(req, clientIp(req, opts.trustProxyHops), res, query, { text }));
  };
  return new Map([
    ['/tr', handler],
    ['/tr/', handler],
  ]);
}
