import { Router, type Request, type RequestHandler, type Response } from 'express';
import { NotFoundError } from '../../errors.ts';
import { jsonBody } from '../../http/body.ts';
import type { Db } from '../../store/db.ts';
import { EVIDENCE_FILTERS, MAX_REF_PAGE, queryRefRecords, type EvidenceFilter } from '../../store/universal-consent.ts';
import type { UrlGuardOptions } from '../url-guard.ts';
import { createSubscription } from '../webhook-subscriptions.ts';
import {
  bool,
  clientId,
  consentGiven,
  dateTime,
  int,
  MAX_CONSENT_TYPE,
  MAX_CUSTOM_USER_ID,
  MAX_METADATA_CHARS,
  MAX_REFERENCE,
  MAX_URI,
  MAX_WEBHOOK_URL,
  optionalJsonBody,
  requestFields,
  text,
} from './fields.ts';
import { fingerprintOf, originOf, type GeoHeaders } from './fingerprint.ts';
import { consentGivenOf, currentRecord, currentRecordOf, findClient, iso, newClient, queryAnswer, recordAnswer, refItem, SOURCE, subjectFor, writeRecord, type RecordsOptions } from './records.ts';

/**
 * SecurePrivacy's authenticated Universal Consent routes (seed
 * secureprivacy-universal-consent-api.txt). The seed names only the integration paths; these are
 * SecurePrivacy's own, from its API reference (https://docs.secureprivacy.ai/api-reference/universal-consent/):
 * POST /api/universalconsent (create), PATCH /api/universalconsent (update), GET
 * /api/universalconsent/:clientId (the record), GET /api/universalconsent/consent-given (check),
 * GET /api/universalconsent (query). The subscribe route's path is not in that reference:
 * POST /api/universalconsent/subscribe is ours, beside the others.
 *
 * Keys and scopes are the /api/v1 ones: writes need `consent:write`, reads `consent:read`, a
 * subscription `admin` (as /api/v1/webhooks: it sends consent data to a URL of the caller's choosing).
 */

export interface SecurePrivacyRouteOptions extends RecordsOptions {
  guard: (scope: 'consent:write' | 'consent:read' | 'admin') => RequestHandler;
  maxBodyBytes: number;
  trustProxyHops: number;
  geoHeaders: GeoHeaders;
  /** Authenticated records also set the site categories. */
  mapCategories: boolean;
  urlGuard: UrlGuardOptions;
  db: Db;
}

const DEFAULT_PAGE = 100;
const WEEK_MS = 7 * 86_400_000;

function apiKeyId(res: Response): string | undefined {
  const id = (res.locals as Record<string, unknown>).apiKeyId;
  return typeof id === 'string' ? id : undefined;
}

export function secureprivacyRouter(o: SecurePrivacyRouteOptions): Router {
  const router = Router();
  const body = jsonBody(o.maxBodyBytes);
  const maybeBody = optionalJsonBody(o.maxBodyBytes);
  const fingerprint = (req: Request) => fingerprintOf(req, o.trustProxyHops, o.geoHeaders);

  // Create: "the same CustomUserId always leads to the same ClientId"; without one, a new ClientId.
  router.post('/api/universalconsent', o.guard('consent:write'), body, async (req, res) => {
    const f = requestFields(req);
    const given = consentGiven(f, true);
    const reference = text(f, 'Reference', MAX_REFERENCE, true);
    const cui = text(f, 'CustomUserId', MAX_CUSTOM_USER_ID);
    const consentType = text(f, 'ConsentType', MAX_CONSENT_TYPE);
    const metadata = text(f, 'Metadata', MAX_METADATA_CHARS);
    const uri = text(f, 'URI', MAX_URI) ?? originOf(req);
    const { clientId: client, subject } = newClient(await o.clientIdKey(), o.siteId, cui);
    const current = cui === undefined ? undefined : await currentRecordOf(o, subject, reference);
    const { created } = await writeRecord(
      o,
      {
        subject,
        evidence: { Reference: reference, ConsentGiven: given, ClientId: client, ConsentType: consentType, Metadata: metadata, URI: uri, CustomUserId: cui, ...fingerprint(req) },
        mapCategories: o.mapCategories,
        apiKeyId: apiKeyId(res),
        raw: req.body,
      },
      current,
    );
    res.json({ Created: iso(created), ClientId: client });
  });

  // Update the consent to a reference of a known ClientId: what the body leaves out is kept.
  router.patch('/api/universalconsent', o.guard('consent:write'), body, async (req, res) => {
    const f = requestFields(req);
    const client = clientId(f);
    const reference = text(f, 'Reference', MAX_REFERENCE, true);
    const givenNow = consentGiven(f);
    const metadata = text(f, 'Metadata', MAX_METADATA_CHARS);
    const found = await findClient(o, client);
    if (found === undefined) throw new NotFoundError('no consent recorded for this ClientId');
    const current = await currentRecord(o, found.members, reference);
    const given = givenNow ?? (current === undefined ? consentGiven(f, true) : consentGivenOf(current, o.clock.now()));
    const kept = (name: string): string | undefined => {
      const v = current?.attributes?.[name];
      return typeof v === 'string' ? v : undefined;
    };
    const subject = subjectFor(found, current);
    await writeRecord(
      o,
      {
        subject,
        evidence: {
          Reference: reference,
          ConsentGiven: given,
          ClientId: client,
          ConsentType: kept('ConsentType'),
          Metadata: metadata ?? kept('Metadata'),
          URI: kept('URI') ?? originOf(req),
          CustomUserId: kept('CustomUserId') ?? (subject.type === 'user' ? subject.id : undefined),
          ...fingerprint(req),
        },
        mapCategories: o.mapCategories,
        apiKeyId: apiKeyId(res),
        raw: req.body,
      },
      current,
    );
    res.status(200).end();
  });

  // Check: registered before /:clientId, which would take `consent-given` as a ClientId.
  router.get('/api/universalconsent/consent-given', o.guard('consent:read'), maybeBody, async (req, res) => {
    const f = requestFields(req);
    const client = clientId(f);
    const reference = text(f, 'Reference', MAX_REFERENCE, true);
    const found = await findClient(o, client);
    if (found === undefined) throw new NotFoundError('no consent recorded for this ClientId');
    const rec = await currentRecord(o, found.members, reference);
    res.json({ ConsentGiven: rec === undefined ? null : consentGivenOf(rec, o.clock.now()) });
  });

  // Query: by default every consent updated in the last week.
  router.get('/api/universalconsent', o.guard('consent:read'), maybeBody, async (req, res) => {
    const f = requestFields(req);
    const now = o.clock.now();
    const evidence: Partial<Record<EvidenceFilter, string>> = {};
    for (const name of EVIDENCE_FILTERS) {
      const v = text(f, name, name === 'UserAgent' ? 512 : MAX_CUSTOM_USER_ID);
      if (v !== undefined) evidence[name] = v;
    }
    const reference = text(f, 'Reference', MAX_REFERENCE);
    const granted = bool(f, 'ConsentGiven');
    const to = dateTime(f, 'ToDate');
    const from = dateTime(f, 'FromDate') ?? now - WEEK_MS;
    const limit = int(f, 'PageSize', MAX_REF_PAGE) ?? DEFAULT_PAGE;
    const cursor = text(f, 'Cursor', 256);
    const page = await queryRefRecords(
      o.db,
      {
        siteId: o.siteId,
        source: SOURCE,
        from,
        now,
        evidence,
        ...(to === undefined ? {} : { to }),
        ...(reference === undefined ? {} : { item: refItem(reference) }),
        ...(granted === undefined ? {} : { granted }),
      },
      cursor,
      limit,
    );
    // The seed's answer is the list itself: the next page's cursor travels in a header.
    if (page.nextCursor !== undefined) res.setHeader('X-Next-Cursor', page.nextCursor);
    const key = await o.clientIdKey();
    res.json(page.records.map((r) => queryAnswer(key, o.siteId, r, now)));
  });

  // Subscribe to changes of the records matching every criterion given.
  router.post('/api/universalconsent/subscribe', o.guard('admin'), body, async (req, res) => {
    const f = requestFields(req);
    const url = text(f, 'WebhookUrl', MAX_WEBHOOK_URL, true);
    const cui = text(f, 'CustomUserId', MAX_CUSTOM_USER_ID);
    const reference = text(f, 'Reference', MAX_REFERENCE);
    const consentType = text(f, 'ConsentType', MAX_CONSENT_TYPE);
    const filters = {
      sources: [SOURCE],
      ...(cui === undefined ? {} : { customUserIds: [cui] }),
      ...(reference === undefined ? {} : { references: [reference] }),
      ...(consentType === undefined ? {} : { consentTypes: [consentType] }),
    };
    const { id, secret } = await createSubscription(o.db, { siteId: o.siteId, url, filters }, { guard: o.urlGuard, clock: o.clock });
    // The seed answers 200 OK; the id (to delete it at /api/v1/webhooks/:id) and the signing secret
    // are given once, as /api/v1/webhooks does: without the secret no delivery can be verified.
    res.status(200).json({ Id: id, Secret: secret });
  });

  // The record of one reference (query or body `Reference`), or without one the latest updated.
  router.get('/api/universalconsent/:clientId', o.guard('consent:read'), maybeBody, async (req, res) => {
    const f = requestFields(req);
    const client = clientId({ ClientId: req.params.clientId });
    const reference = text(f, 'Reference', MAX_REFERENCE);
    const found = await findClient(o, client);
    const rec = await currentRecord(o, found?.members, reference);
    if (rec === undefined) throw new NotFoundError(found === undefined ? 'no consent recorded for this ClientId' : 'no consent recorded for this ClientId and Reference');
    res.json(recordAnswer(await o.clientIdKey(), o.siteId, rec, o.clock.now()));
  });

  return router;
}
