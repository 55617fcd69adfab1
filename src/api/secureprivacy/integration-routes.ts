import { Router, type Request, type RequestHandler } from 'express';
import { NotFoundError, RateLimitedError } from '../../errors.ts';
import { clientIp } from '../../http/client-ip.ts';
import { corsPolicy } from '../../http/cors.ts';
import { jsonBody } from '../../http/body.ts';
import type { RateLimiter } from '../rate-limit.ts';
import { clientId, consentGiven, field, MAX_CONSENT_TYPE, MAX_CUSTOM_USER_ID, requestFields, text } from './fields.ts';
import { fingerprintOf, originOf, type GeoHeaders } from './fingerprint.ts';
import { attr, consentGivenOf, currentRecord, currentRecordOf, findClient, iso, newClient, writeRecord, type RecordsOptions } from './records.ts';

/**
 * SecurePrivacy's integration routes (seed secureprivacy-universal-consent-api.txt):
 * `POST /api/universalconsent/integration/:IntegrationId` records a consent and
 * `GET /api/universalconsent/integration/:ClientId?IntegrationId=` checks one, WITHOUT
 * authentication, keyed by the integration ids of the config (`api.secureprivacy.integrations`).
 * Because anyone may call them:
 * - each client address is rate limited (429 + Retry-After), before anything else is looked at,
 *   so guessing integration ids or ClientIds costs the guesser time;
 * - an unknown IntegrationId, ClientId, or a ClientId without a record of that integration is the
 *   same 404;
 * - the answers hold the seed's fields and nothing more, and only the integration's own reference
 *   is ever read or written;
 * - an integration sets the site categories only when its config says so (`mapCategories`).
 */

export interface Integration {
  id: string;
  reference: string;
  mapCategories: boolean;
}

export interface IntegrationRouteOptions extends RecordsOptions {
  integrations: readonly Integration[];
  limiter: RateLimiter;
  maxBodyBytes: number;
  trustProxyHops: number;
  geoHeaders: GeoHeaders;
  /** Origins whose pages may call these routes from a browser (server.allowedOrigins, as for hits). */
  allowedOrigins: readonly string[];
}

/** The seed's integration request is three short fields: a small body bound. */
const MAX_INTEGRATION_BODY = 4096;
const MAX_INTEGRATION_ID = 128;

const NOT_FOUND = 'no such integration, or no consent recorded for it';

export function integrationRouter(o: IntegrationRouteOptions): Router {
  const router = Router();
  const byId = new Map(o.integrations.map((i) => [i.id, i]));
  // Integrations without a key are typically a site's own pages (forms, email links): the same
  // CORS as the hit routes, preflights answered before the rate limit.
  const cors = corsPolicy(o.allowedOrigins);
  router.use('/api/universalconsent/integration', (req, res, next) => {
    cors.headers(req, res);
    if (req.method === 'OPTIONS') cors.preflight(req, res);
    else next();
  });
  const limited: RequestHandler = (req, _res, next) => {
    const over = o.limiter.take(clientIp(req, o.trustProxyHops) ?? 'unknown');
    next(over === undefined ? undefined : new RateLimitedError(`too many integration requests from this address; retry after ${over.retryAfterSeconds} s`, { retryAfterS: over.retryAfterSeconds, details: { retryAfterSeconds: over.retryAfterSeconds } }));
  };
  const integration = (id: unknown): Integration => {
    const found = typeof id === 'string' && id.length <= MAX_INTEGRATION_ID ? byId.get(id) : undefined;
    if (found === undefined) throw new NotFoundError(NOT_FOUND);
    return found;
  };

  // Create or update: with a CustomUserId, its stable ClientId's record is updated.
  router.post('/api/universalconsent/integration/:IntegrationId', limited, jsonBody(Math.min(MAX_INTEGRATION_BODY, o.maxBodyBytes)), async (req: Request, res) => {
    const int = integration(req.params.IntegrationId);
    const f = requestFields(req);
    const given = consentGiven(f, true);
    const cui = text(f, 'CustomUserId', MAX_CUSTOM_USER_ID);
    const consentType = text(f, 'ConsentType', MAX_CONSENT_TYPE);
    const { clientId: client, subject } = newClient(await o.clientIdKey(), o.siteId, cui);
    const current = cui === undefined ? undefined : await currentRecordOf(o, subject, int.reference);
    const { created } = await writeRecord(
      o,
      {
        subject,
        evidence: {
          Reference: int.reference,
          ConsentGiven: given,
          ClientId: client,
          ConsentType: consentType ?? (current === undefined ? undefined : (attr(current, 'ConsentType') ?? undefined)),
          Metadata: current === undefined ? undefined : (attr(current, 'Metadata') ?? undefined),
          URI: originOf(req) ?? (current === undefined ? undefined : (attr(current, 'URI') ?? undefined)),
          CustomUserId: cui,
          IntegrationId: int.id,
          ...fingerprintOf(req, o.trustProxyHops, o.geoHeaders),
        },
        mapCategories: int.mapCategories,
        raw: req.body,
      },
      current,
    );
    res.json({ Created: iso(created), ClientId: client, Reference: int.reference, ...(cui === undefined ? {} : { CustomUserId: cui }) });
  });

  // Check the integration's record of a ClientId.
  router.get('/api/universalconsent/integration/:ClientId', limited, async (req, res) => {
    const f = requestFields(req);
    const id = field(f, 'IntegrationId');
    if (id === undefined || id === '') text(f, 'IntegrationId', MAX_INTEGRATION_ID, true);
    const int = integration(id);
    const client = clientId({ ClientId: req.params.ClientId });
    const rec = await currentRecord(o, (await findClient(o, client))?.members, int.reference);
    if (rec === undefined) throw new NotFoundError(NOT_FOUND);
    res.json({ ClientId: client, Reference: int.reference, ConsentGiven: consentGivenOf(rec, o.clock.now()), Created: iso(rec.created), Metadata: attr(rec, 'Metadata') });
  });

  return router;
}
