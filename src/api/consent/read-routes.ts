import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { NotFoundError } from '../../errors.ts';
import { parseOr400 } from './validate.ts';
import type { SubjectConsent, SubjectRef } from '../../store/types.ts';
import { idProblem, subjectIdSchema } from './ids.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { itemStatus } from '../../consent/store-source.ts';

/** What the read routes need of the store. */
export interface ConsentReader {
  read(siteId: string, subject: SubjectRef, now?: number): Promise<SubjectConsent | undefined>;
}

export interface ReadRouteOptions {
  siteId: string;
  /** The site's consent categories. */
  categories: readonly string[];
  /**
   * The verify answer's category names → site categories (config `api.verify.categories`);
   * absent: `defaultVerifyCategories(categories)`.
   */
  verifyCategories?: Readonly<Record<string, string>>;
  store: ConsentReader;
  guard: (scope: 'consent:read') => RequestHandler;
  /**
   * A visitor's record for the verify route, through the hit path's cache (StoreSource.readVisitor);
   * without it the store is read. A cached record's `expired` flags may be stale: validity is
   * judged against now.
   */
  readVisitor?: (visitorId: string) => Promise<SubjectConsent | undefined>;
  /** The time source; default the system clock. */
  clock?: Clock;
  /**
   * The record with the categories its stored TCF string decides added as items (categories no
   * item states, through `site.categories.<id>.tcf.purposes`): consent/stored-tcf.ts. Absent: a
   * stored string does not answer verify.
   */
  tcfItems?: (consent: SubjectConsent, now: number) => SubjectConsent;
}

/** CookieBoss's documented "no consent found" answer (seed cookieboss-consent-verification-api.txt). */
export const NO_CONSENT_FOUND = Object.freeze({ hasConsent: false, categories: null, consentedAt: null, geoCountry: null });

// Required (the seed: "The visitor_id query parameter is required"); an empty one is present but
// invalid, answered like any id that could never be stored (below).
export const verifyQuery = z.object({ visitor_id: z.string({ error: 'required' }) }).loose();
export const checkQuery = z
  .object({ category: z.string().min(1).max(140).optional(), reference: z.string().min(1).max(520).optional() })
  .strict()
  .refine((q) => (q.category === undefined) !== (q.reference === undefined), { message: 'give exactly one of category or reference', path: ['category'] });

export const subjectParams = z.object({ type: z.enum(['visitor', 'user']), id: subjectIdSchema }).loose();

function subjectParam(type: unknown, id: unknown): SubjectRef {
  if (type !== 'visitor' && type !== 'user') throw new NotFoundError('subjects are /subjects/visitor/:id or /subjects/user/:id');
  const { type: t, id: subjectId } = parseOr400(subjectParams, { type, id });
  return { type: t, id: subjectId };
}

/**
 * CookieBoss's category names (seed cookieboss-consent-verification-api.txt: `necessary`,
 * `analytics`, `marketing`, `functional`) for the site categories that mean them, so a CookieBoss
 * client reading `categories.marketing` finds the site's `advertising`. `marketing` is the site's
 * own `marketing` category if it has one, else its `advertising`. Every other site category
 * answers under its own id (an `advertising` beside a `marketing` too): nothing the site records
 * is hidden, and no two site categories share one name.
 */
export function defaultVerifyCategories(siteCategories: readonly string[]): Record<string, string> {
  const has = new Set(siteCategories);
  const out = new Map<string, string>();
  const marketing = has.has('marketing') ? 'marketing' : has.has('advertising') ? 'advertising' : undefined;
  if (marketing !== undefined) out.set('marketing', marketing);
  for (const c of siteCategories) {
    if (c === marketing || out.has(c)) continue;
    out.set(c, c);
  }
  // fromEntries defines own properties: a site category called "constructor" is a plain key.
  return Object.fromEntries(out);
}

/** The consent record's state of `item`, own properties only (an item "constructor" or "__proto__" must not meet Object.prototype). */
function itemOf(consent: SubjectConsent | undefined, item: string): SubjectConsent['items'][string] | undefined {
  return consent !== undefined && Object.hasOwn(consent.items, item) ? consent.items[item] : undefined;
}

/** An item's effective state for a reader: granted only when granted and not expired. */
function effective(consent: SubjectConsent, item: string, now: number): 'granted' | 'denied' | 'unknown' {
  const s = itemOf(consent, item);
  return s === undefined ? 'unknown' : itemStatus(s, now);
}

/**
 * Verify answers from the profile's TCF string too, as hits are decided by it (seed
 * seeka-server-side-consent.txt: Seeka decodes the stored string "on every server-side egress"):
 * a record holding only a string (Seeka's push) is consent found, and the categories no item
 * states are answered by the string's purposes; an invalid string answers them `false`.
 */
function withStoredTcf(o: ReadRouteOptions, consent: SubjectConsent | undefined, now: number): SubjectConsent | undefined {
  return consent === undefined || o.tcfItems === undefined ? consent : o.tcfItems(consent, now);
}

export function consentReadRouter(o: ReadRouteOptions): Router {
  const router = Router();
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const answerNames = Object.entries(o.verifyCategories ?? defaultVerifyCategories(o.categories));

  // CookieBoss-compatible verify, so Tagwarden can be another tag server's upstream.
  router.get('/api/v1/public/sites/:siteId/consent/verify', o.guard('consent:read'), async (req, res) => {
    if (req.params.siteId !== o.siteId) throw new NotFoundError(`unknown site ${String(req.params.siteId).slice(0, 64)}`);
    const visitor = parseOr400(verifyQuery, req.query).visitor_id;
    // An id we could never have stored (too long, a NUL or another control character, a lone
    // surrogate: src/store/ids.ts) is "not found", the answer the seed documents "if the visitor
    // ID is invalid" (cookieboss-consent-verification-api.txt); never sent to the engine.
    const at = now();
    const consent = withStoredTcf(
      o,
      idProblem(visitor) !== undefined ? undefined : o.readVisitor !== undefined ? await o.readVisitor(visitor) : await o.store.read(o.siteId, { type: 'visitor', id: visitor }, at),
      at,
    );
    if (consent === undefined || Object.keys(consent.items).length === 0) {
      res.json(NO_CONSENT_FOUND);
      return;
    }
    // Booleans only, as the seed's answer lists them: granted → true, denied or expired → false,
    // never stated → absent (not `false`: a client must not read "never asked" as "refused", and
    // not `null`: the seed's map holds booleans; null is its whole-answer "no consent").
    const states = new Map<string, boolean>();
    for (const [name, site] of answerNames) {
      const state = effective(consent, site, at);
      if (state !== 'unknown') states.set(name, state === 'granted');
    }
    const categories = Object.fromEntries(states);
    res.json({
      hasConsent: true,
      categories,
      consentedAt: consent.consentAt === null ? null : new Date(consent.consentAt).toISOString(),
      geoCountry: consent.geoCountry,
    });
  });

  // A subject's full record, merged over its linked subjects.
  router.get('/api/v1/subjects/:type/:id', o.guard('consent:read'), async (req, res) => {
    const subject = subjectParam(req.params.type, req.params.id);
    const consent = await o.store.read(o.siteId, subject, now());
    if (consent === undefined) throw new NotFoundError('no consent recorded for this subject');
    res.json(consent);
  });

  // One category (?category=) or object reference (?reference=) for a subject.
  router.get('/api/v1/subjects/:type/:id/check', o.guard('consent:read'), async (req, res) => {
    const subject = subjectParam(req.params.type, req.params.id);
    const { category, reference } = parseOr400(checkQuery, req.query);
    const item = category ?? `ref:${reference ?? ''}`;
    const at = now();
    const consent = await o.store.read(o.siteId, subject, at);
    const state = consent === undefined ? 'unknown' : effective(consent, item, at);
    const detail = itemOf(consent, item);
    res.json({ subject, item, consented: state === 'granted', state, ...(detail === undefined ? {} : { since: new Date(detail.consentAt).toISOString(), validUntil: detail.validUntil === null ? 'unlimited' : new Date(detail.validUntil).toISOString(), expired: detail.expired, source: detail.source }) });
  });

  return router;
}
