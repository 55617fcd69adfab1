import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../../config/load.ts';
import type { Resolution, TemplateCatalog } from '../../destinations/resolve.ts';
import type { Clock } from '../../lib/clock.ts';
import { createHistory } from '../../observability/history.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { DEFAULT_RECENT_DECISIONS, recentDecisions } from '../../observability/recent-decisions.ts';
import type { Scope } from '../keys.ts';
import type { FailureThrottle } from '../rate-limit.ts';
import { uiDataRouter } from './data-routes.ts';
import { destinationViews } from './destinations-view.ts';
import { uiHeaders } from './headers.ts';
import { uiLoginRouter } from './login-routes.ts';
import { createUiSessions } from './session.ts';
import { sessionAuth, type SessionAuth } from './session-check.ts';
import { loadUiFiles, type UiFiles } from './static-files.ts';
import { uiStaticRouter } from './static-routes.ts';

export interface DashboardDeps {
  config: Config;
  /** The app's clock (the consent clock: hits are stamped on it): sessions, overview buckets, decision times. */
  clock: Clock;
  metrics: Metrics;
  templates: TemplateCatalog;
  resolution: Resolution;
  /** The admin key's failure throttle, shared with /debug (one budget of guesses per address). */
  failures: FailureThrottle;
  log: Logger;
  /** The page's files; default read from the repo's ui/ and node_modules (tests pass their own). */
  files?: UiFiles;
}

export interface Dashboard {
  /** For the API guard (src/api/guard.ts): a session with its CSRF token counts as an admin key. */
  session: SessionAuth;
  /** The routes of /ui, guarded by `guard('admin')` where they read data. */
  router(guard: (scope: Scope) => RequestHandler): Router;
  /** Stops the overview's sampling. */
  close(): void;
}

/** Why the dashboard is off (config `ui.enabled`, `debug.adminKey`, a store), or undefined when it is on. */
export function dashboardOff(config: Config, hasStore: boolean): string | undefined {
  if (!config.ui.enabled) return 'ui.enabled is false';
  if (config.debug.adminKey === undefined) return 'debug.adminKey is not set (it is the login key)';
  if (!hasStore) return 'there is no store (it keeps the consent records, audit trail and receipts the dashboard shows)';
  return undefined;
}

/**
 * The dashboard at /ui (docs/ui.md), or undefined when it is off, which is logged once. Its
 * sampling of the counters and its list of recent decisions start here.
 */
export function createDashboard(d: DashboardDeps, hasStore: boolean): Dashboard | undefined {
  const off = dashboardOff(d.config, hasStore);
  const adminKey = d.config.debug.adminKey;
  if (off !== undefined || adminKey === undefined) {
    d.log.info({ reason: off }, 'dashboard (/ui) off');
    return undefined;
  }
  const files = d.files ?? loadUiFiles();
  for (const why of files.skipped) d.log.warn({ file: why }, 'dashboard file not served');
  if (files.index === undefined) d.log.warn('dashboard page ui/index.html missing: /ui answers 404');
  const sessions = createUiSessions({ adminKey, ttlSeconds: d.config.ui.sessionTtlSeconds, clock: d.clock });
  const session = sessionAuth(sessions);
  const history = createHistory({ metrics: d.metrics, clock: d.clock });
  const recent = recentDecisions(d.metrics);
  recent.keep(DEFAULT_RECENT_DECISIONS, d.clock);
  const destinations = destinationViews(d.config, d.templates, d.resolution);
  return {
    session,
    router(guard) {
      const router = Router();
      router.use('/ui', uiHeaders());
      router.use(uiStaticRouter(files));
      router.use(
        uiLoginRouter({ adminKey, sessions, session, failures: d.failures, trustProxyHops: d.config.server.trustProxyHops, secureCookie: d.config.ui.secureCookie }),
      );
      router.use(uiDataRouter({ guard, history, recent, recentCapacity: DEFAULT_RECENT_DECISIONS, destinations }));
      return router;
    },
    close: () => history.stop(),
  };
}
