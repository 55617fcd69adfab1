import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { jsonBody } from '../../http/body.ts';
import { MAX_EXPIRE, type ConsentStore, type ExpireTarget } from '../../store/consent.ts';
import { parseSubjectKey } from '../../store/types.ts';
import { parseOr400 } from './validate.ts';

/**
 * Expiring invalid consent events (seed bloomreach-tracking-consent.txt: "Invalid consent events
 * revoke consent … If this happens unintentionally, you can expire the invalid consent events to
 * restore the customer's previous consent status"). The events are named by their audit seq (the
 * `seq` of `GET /api/v1/audit?valid=false`), or all of one subject's category or reference at once.
 * Each expiry is an audit row of its own; the item is recomputed from the log without the expired
 * events (src/store/replay.ts), through the store's change path (versions, webhooks, caches).
 */
export interface ExpireRouteOptions {
  siteId: string;
  store: Pick<ConsentStore, 'expire'>;
  guard: (scope: 'consent:write') => RequestHandler;
  maxBodyBytes: number;
}

export const expireSchema = z
  .object({
    seqs: z.array(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)).min(1).max(MAX_EXPIRE).optional(),
    subject: z.string().max(300).regex(/^(visitor|user):./, 'visitor:<id> or user:<id>').optional(),
    category: z.string().min(1).max(140).optional(),
    reference: z.string().min(1).max(512).optional(),
  })
  .strict();

function targetOf(body: z.output<typeof expireSchema>): ExpireTarget {
  const refuse = (path: string, message: string): never => {
    throw new ValidationError(`${path}: ${message}`, { details: { issues: [{ path, message }] } });
  };
  if (body.seqs !== undefined) {
    if (body.subject !== undefined || body.category !== undefined || body.reference !== undefined) refuse('seqs', 'either seqs, or subject with category or reference');
    return { seqs: body.seqs };
  }
  if (body.subject === undefined) return refuse('seqs', 'required (or subject with category or reference)');
  if ((body.category === undefined) === (body.reference === undefined)) return refuse('category', 'one of category or reference with subject');
  return { subject: parseSubjectKey(body.subject), item: body.category ?? `ref:${body.reference!}` };
}

export function consentExpireRouter(o: ExpireRouteOptions): Router {
  const router = Router();
  router.post('/api/v1/consent/events/expire', o.guard('consent:write'), jsonBody(o.maxBodyBytes), async (req, res) => {
    const target = targetOf(parseOr400(expireSchema, req.body));
    const id: unknown = res.locals.apiKeyId;
    const result = await o.store.expire(o.siteId, target, { source: 'api', ...(typeof id === 'string' ? { apiKeyId: id } : {}) });
    res.status(200).json(result);
  });
  return router;
}
