/**
 * `/g/collect` on the fast path (src/ingest/fast-path.ts): a GET, or a POST with a readable body
 * within the limit, is answered here exactly as ga4-routes.ts answers it (ga4Answer); an encoded body,
 * and an oversized one (refused unread when its declared length says so), go to the Express route.
 */
import { clientIp } from '../http/client-ip.ts';
import { answerWithText, type FastHandler, type HitFastPathOptions } from './fast-path.ts';
import { ga4Answer, type Ga4RouteOptions } from './ga4-routes.ts';

export function ga4FastRoute(opts: HitFastPathOptions & Pick<Ga4RouteOptions, 'maxBytes' | 'maxHits' | 'refusals'>): Map<string, FastHandler> {
  const answer = ga4Answer(opts);
  const handler: FastHandler = (req, res, query, pass) => {
    const respond = (body: string | undefined): void => answer(query, body, req, clientIp(req, opts.trustProxyHops), res);
    if (req.method === 'GET') {
      try {
        respond(undefined);
      } catch {
        pass(); // refused (shutdown began): the Express route gives the answer
      }
      return;
    }
    const encoding = req.headers['content-encoding'];
    if (req.method !== 'POST' || (encoding !== undefined && encoding !== 'identity')) {
      pass();
      return;
    }
    answerWithText(req, opts.maxBytes, opts.accepting, pass, respond);
  };
  return new Map([['/g/collect', handler]]);
}
