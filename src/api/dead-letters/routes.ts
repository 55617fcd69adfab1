import { Router, type RequestHandler } from 'express';
import { NotFoundError } from '../../errors.ts';
import { jsonBody } from '../../http/body.ts';
import type { Db } from '../../store/db.ts';
import { listDead, purgeDead } from '../../store/journal.ts';
import { parseOr400 } from '../consent/validate.ts';
import { deadBodySchema, deadListSchema, toDeadFilter } from './filter.ts';
import { replayMatching } from './replay.ts';
import { deadLetterView } from './view.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';

export interface DeadLetterRouteOptions {
  siteId: string;
  db: Db;
  guard: (scope: 'admin') => RequestHandler;
  maxBodyBytes: number;
  /** The time source; default the system clock. */
  clock?: Clock;
  /**
   * Rows were replayed: their hits are released in the store, and the instance takes them over at
   * once rather than at its next takeover (within `delivery.journal.leaseMs`).
   */
  onReplayed?: () => void;
}

/**
 * Dead letters of the delivery journal (admin scope; docs/dead-letters.md): list, replay (the
 * normal path sends them again, consent re-checked), purge. Answers never carry the stored event,
 * only what identifies it (src/api/dead-letters/view.ts).
 */
export function deadLetterRouter(o: DeadLetterRouteOptions): Router {
  const router = Router();
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();

  router.get('/api/v1/deliveries/dead', o.guard('admin'), async (req, res) => {
    const filter = toDeadFilter(o.siteId, parseOr400(deadListSchema, req.query, 'query'));
    res.json({ deadLetters: (await listDead(o.db, filter)).map(deadLetterView) });
  });

  router.post('/api/v1/deliveries/dead/replay', o.guard('admin'), jsonBody(o.maxBodyBytes), async (req, res) => {
    const body = parseOr400(deadBodySchema, req.body, 'body');
    const filter = toDeadFilter(o.siteId, body);
    const replayed = await replayMatching(o.db, filter, now());
    // One named dead letter that is not there (never was, or replayed or purged already): 404.
    if (replayed === 0 && body.hitId !== undefined && body.destinationId !== undefined) throw new NotFoundError('no such dead letter');
    if (replayed > 0) o.onReplayed?.();
    res.json({ replayed });
  });

  router.delete('/api/v1/deliveries/dead', o.guard('admin'), jsonBody(o.maxBodyBytes), async (req, res) => {
    const body = parseOr400(deadBodySchema, req.body, 'body');
    const purged = await purgeDead(o.db, toDeadFilter(o.siteId, body));
    if (purged === 0 && body.hitId !== undefined && body.destinationId !== undefined) throw new NotFoundError('no such dead letter');
    res.json({ purged });
  });

  return router;
}
