import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { OVERVIEW_WINDOW_NAMES, type History } from '../../observability/history.ts';
import type { RecentDecisions } from '../../observability/recent-decisions.ts';
import { parseOr400 } from '../consent/validate.ts';
import type { Scope } from '../keys.ts';
import type { DestinationView } from './destinations-view.ts';

export interface DataRouteOptions {
  /** The API guard: a dashboard session or an admin API key. */
  guard: (scope: Scope) => RequestHandler;
  history: History;
  recent: RecentDecisions;
  /** The decisions kept (GET /ui/api/decisions answers at most this many). */
  recentCapacity: number;
  destinations: readonly DestinationView[];
}

const overviewQuery = z.object({ window: z.enum(OVERVIEW_WINDOW_NAMES).default('1h') }).strict();

/** The dashboard's own data (docs/ui.md): the delivery overview, the latest decisions, the destinations as configured. */
export function uiDataRouter(o: DataRouteOptions): Router {
  const router = Router();
  const running = o.destinations.filter((d) => d.enabled).map((d) => ({ id: d.id, template: d.template }));
  const decisionsQuery = z.object({ limit: z.coerce.number().int().min(1).max(o.recentCapacity).default(Math.min(50, o.recentCapacity)) }).strict();

  router.get('/ui/api/overview', o.guard('admin'), async (req, res) => {
    const { window } = parseOr400(overviewQuery, req.query, 'query');
    res.json(await o.history.overview(window, running));
  });
  router.get('/ui/api/decisions', o.guard('admin'), (req, res) => {
    const { limit } = parseOr400(decisionsQuery, req.query, 'query');
    res.json(o.recent.latest(limit));
  });
  router.get('/ui/api/destinations', o.guard('admin'), (_req, res) => {
    res.json(o.destinations);
  });
  return router;
}
