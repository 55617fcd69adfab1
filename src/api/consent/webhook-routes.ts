import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { NotFoundError } from '../../errors.ts';
import { parseOr400 } from './validate.ts';
import { jsonBody } from '../../http/body.ts';
import type { Db } from '../../store/db.ts';
import { deleteSubscription, listSubscriptions } from '../../store/webhooks.ts';
import { createSubscription } from '../webhook-subscriptions.ts';
import type { UrlGuardOptions } from '../url-guard.ts';
import type { Clock } from '../../lib/clock.ts';

export const subscriptionSchema = z
  .object({
    url: z.string().min(1).max(2048),
    filters: z
      .object({
        items: z.array(z.string().min(1).max(140)).min(1).max(200).optional(),
        sources: z.array(z.string().min(1).max(256)).min(1).max(200).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Webhook subscriptions (admin scope): each consent change is POSTed, signed, to every matching URL. */
export function webhookRouter(o: { siteId: string; db: Db; guard: (scope: 'admin') => RequestHandler; urlGuard: UrlGuardOptions; maxBodyBytes: number; clock?: Clock }): Router {
  const time = o.clock === undefined ? {} : { clock: o.clock };
  const router = Router();
  router.post('/api/v1/webhooks', o.guard('admin'), jsonBody(o.maxBodyBytes), async (req, res) => {
    const data = parseOr400(subscriptionSchema, req.body);
    const sub = { siteId: o.siteId, url: data.url, ...(data.filters === undefined ? {} : { filters: data.filters }) };
    const { id, secret } = await createSubscription(o.db, sub, { guard: o.urlGuard, ...time });
    // The secret is shown once: the receiver verifies signatures with it.
    res.status(201).json({ id, secret, url: data.url, filters: data.filters ?? {} });
  });
  router.get('/api/v1/webhooks', o.guard('admin'), async (_req, res) => {
    res.json({ subscriptions: await listSubscriptions(o.db, o.siteId) });
  });
  router.delete('/api/v1/webhooks/:id', o.guard('admin'), async (req, res) => {
    if (!(await deleteSubscription(o.db, o.siteId, String(req.params.id), time))) throw new NotFoundError('no such webhook subscription');
    res.status(204).end();
  });
  return router;
}
