import { Router, type RequestHandler } from 'express';
import type { Config } from '../../config/load.ts';
import type { Clock } from '../../lib/clock.ts';
import type { ClientIdKey } from '../../store/client-id.ts';
import type { Db } from '../../store/db.ts';
import type { ConsentInput, InputOutcome } from '../../store/types.ts';
import { createRateLimiter } from '../rate-limit.ts';
import type { UrlGuardOptions } from '../url-guard.ts';
import { integrationRouter } from './integration-routes.ts';
import { resolveGrants } from './records.ts';
import { secureprivacyRouter } from './routes.ts';

/**
 * The SecurePrivacy-compatible Universal Consent API (config `api.secureprivacy`, seed
 * secureprivacy-universal-consent-api.txt, docs/consent-api.md "SecurePrivacy"): the authenticated
 * routes and the unauthenticated integration routes, on the consent store. An empty router when
 * disabled.
 */
export function secureprivacyRoutes(o: {
  config: Config;
  db: Db;
  store: { apply(inputs: ConsentInput[]): Promise<InputOutcome[]> };
  guard: (scope: 'consent:write' | 'consent:read' | 'admin') => RequestHandler;
  urlGuard: UrlGuardOptions;
  clock: Clock;
  clientIdKey: () => Promise<ClientIdKey>;
}): Router {
  const { config } = o;
  const sp = config.api.secureprivacy;
  const router = Router();
  if (!sp.enabled) return router;
  const categories = Object.keys(config.site.categories);
  const records = { siteId: config.site.id, db: o.db, store: o.store, categories, grants: resolveGrants(categories, sp.consentGiven), clock: o.clock, clientIdKey: o.clientIdKey };
  const common = { maxBodyBytes: config.api.maxBodyBytes, trustProxyHops: config.server.trustProxyHops, geoHeaders: sp.geoHeaders };
  // The integration routes first: `/integration/:ClientId` must not reach the authenticated `/:clientId`.
  router.use(
    integrationRouter({
      ...records,
      ...common,
      integrations: sp.integrations,
      allowedOrigins: config.server.allowedOrigins,
      limiter: createRateLimiter({ perSecond: sp.integrationRateLimit.perSecond, burst: sp.integrationRateLimit.burst, clock: o.clock }),
    }),
  );
  router.use(secureprivacyRouter({ ...records, ...common, guard: o.guard, mapCategories: sp.mapCategories, urlGuard: o.urlGuard }));
  return router;
}
