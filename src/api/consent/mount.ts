import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../../config/load.ts';
import { chainSources, createStoreSource, type StoreSource } from '../../consent/store-source.ts';
import { createStoredTcfReader } from '../../consent/stored-tcf.ts';
import type { TcfReader } from '../../consent/tcf.ts';
import type { ConsentSource } from '../../consent/upstream/source.ts';
import { createConsentStore, type ConsentStore } from '../../store/consent.ts';
import type { Db } from '../../store/db.ts';
import { startChangeFeed, type ChangeFeed, type ChangeRelay } from '../../store/notify.ts';
import { enqueueForChanges } from '../../store/webhooks.ts';
import { createExpirySweeper } from '../../store/expiry.ts';
import { createWebhookWorker, type WebhookWorkerOptions } from '../webhook-worker.ts';
import { webhookRouter } from './webhook-routes.ts';
import { deadLetterRouter } from '../dead-letters/routes.ts';
import { openApiRouter } from '../openapi/route.ts';
import { auditRouter } from './audit-routes.ts';
import { receiptRouter } from './receipt-routes.ts';
import { consentExpireRouter } from './expire-routes.ts';
import { consentReadRouter } from './read-routes.ts';
import { consentWriteRouter } from './write-routes.ts';
import { rememberClientId } from '../../store/universal-consent.ts';
import { subjectKey } from '../../store/types.ts';
import { clientIdKeys } from '../../store/client-id.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { secureprivacyRoutes } from '../secureprivacy/index.ts';

export type Scope = 'consent:write' | 'consent:read' | 'audit:read' | 'admin';

export interface ConsentApiOptions {
  config: Config;
  db: Db;
  log: Logger;
  /** Admits a request holding an API key with the scope (401 without a valid key, 403 without the scope). */
  guard: (scope: Scope) => RequestHandler;
  /** The upstream verify source, asked for visitors the store knows nothing about. */
  upstream: ConsentSource | undefined;
  /** Options of the webhook worker (tests shorten its poll); it is not started when `false`. */
  webhooks?: Partial<WebhookWorkerOptions> | false;
  /** A visitor's consent changed (here or on another instance): re-decide what waits for it. */
  onVisitorChanged: (visitorId: string) => void;
  /** Dead letters were replayed through the API: take their released hits over now (src/app.ts). */
  onDeadLettersReplayed?: () => void;
  /**
   * Time of the store's writes and reads (consent validity), the routes, the webhook worker and the
   * change feed's reconnects: the app's consent clock. Default: the system clock.
   */
  clock?: Clock;
  /** The hit path's TCF reader (ConsentResolver.tcf), so a string is decoded and cached once. Absent: one of its own. */
  tcfReader?: TcfReader;
  /**
   * The other workers of this host (server.workers above 1): this process's changes go to them,
   * theirs come here. Without it a withdrawal through one worker would not reach another's cache.
   */
  relay?: ChangeRelay;
}

export interface ConsentApi {
  router: Router;
  store: ConsentStore;
  storeSource: StoreSource;
  /** Store first, then the upstream: what the pipeline asks. */
  source: ConsentSource;
  close(): Promise<void>;
}

/**
 * The consent system of record: the store, its place in the resolution chain (with cache
 * invalidation here at once and on other instances through the change feed), and the /api/v1
 * routes. A change to a subject forgets its cached consent, supersedes upstream lookups in flight
 * for it (revocation wins), and re-decides events waiting for it.
 */
export function createConsentApi(o: ConsentApiOptions): ConsentApi {
  const { config } = o;
  const siteId = config.site.id;
  const categories = Object.keys(config.site.categories);
  const clock = o.clock ?? systemClock;
  // Declared before the store (whose afterCommit uses it); assigned right after it.
  const late: { storeSource?: StoreSource } = {};

  const changed = (subjectKey: string): void => {
    late.storeSource?.forget(subjectKey);
    if (subjectKey.startsWith('visitor:')) {
      const visitorId = subjectKey.slice('visitor:'.length);
      o.upstream?.invalidate(visitorId);
      o.onVisitorChanged(visitorId);
    }
  };

  // Committed here: forgotten here, and told to the other workers of this host.
  const changedHere = (site: string, subjectKey: string): void => {
    o.relay?.publish(site, subjectKey);
    if (site === siteId) changed(subjectKey);
  };
  o.relay?.subscribe((site, subjectKey) => {
    if (site === siteId) changed(subjectKey);
  });

  const urlGuard = { allowPrivate: config.api.webhooks.allowPrivate, allowHosts: config.api.webhooks.allowHosts };
  // Deliveries are written in the same transaction as the change: at least once, never lost.
  const store = createConsentStore(o.db, {
    clock,
    onChanges: enqueueForChanges,
    afterCommit: (changes) => {
      for (const c of changes) changedHere(c.siteId, subjectKey(c.subject));
    },
    onAfterCommitError: (err) => o.log.error({ err }, 'consent change handling failed after commit'),
  });
  // The profile's TCF string, decoded for hits and for verify (seed seeka-server-side-consent.txt).
  const storedTcf = createStoredTcfReader({ tcf: config.consent.tcf, categories: config.site.categories, ...(o.tcfReader === undefined ? {} : { reader: o.tcfReader }) });
  const storeSource = createStoreSource({ siteId, categories, read: (s, subject, at) => store.read(s, subject, at), clock, tcf: storedTcf });
  late.storeSource = storeSource;
  const source = chainSources(storeSource, o.upstream);

  let feed: ChangeFeed | undefined;
  let closing = false;
  // Other instances on the same PostgreSQL announce their writes (the workers of this host also through `relay`).
  const feedReady = startChangeFeed(
    o.db,
    (site, subjectKey) => {
      if (site === siteId) changed(subjectKey);
    },
    { clock },
  ).then(
    (f) => {
      if (closing) return f.close();
      feed = f;
    },
    (err: unknown) => o.log.error({ err }, 'consent change feed could not start; other instances\' changes reach this one only when cache entries expire'),
  );

  // SecurePrivacy ClientIds are keyed by a secret of the store (src/store/client-id.ts).
  const clientIdKey = clientIdKeys(o.db, () => clock.now());
  const router = Router();
  router.use(consentWriteRouter({ siteId, store, guard: o.guard, maxBodyBytes: config.api.maxBodyBytes, maxCsvBytes: config.api.maxCsvBytes, maxBatchEvents: config.api.maxBatchEvents, consentClockSkewMs: config.site.consentClockSkewMs, requestTimeoutMs: config.server.requestTimeoutMs, clock, clientIdKey, rememberClientId: (clientId, subject) => rememberClientId(o.db, siteId, clientId, subjectKey(subject), clock.now()) }));
  router.use(consentReadRouter({ siteId, categories, ...(config.api.verify.categories === undefined ? {} : { verifyCategories: config.api.verify.categories }), store, guard: o.guard, readVisitor: (visitorId) => storeSource.readVisitor(visitorId), clock, tcfItems: (c, at) => storedTcf.withItems(c, at) }));
  router.use(consentExpireRouter({ siteId, store, guard: o.guard, maxBodyBytes: config.api.maxBodyBytes }));
  router.use(auditRouter({ siteId, db: o.db, guard: o.guard }));
  router.use(receiptRouter({ siteId, db: o.db, guard: o.guard }));
  router.use(webhookRouter({ siteId, db: o.db, guard: o.guard, urlGuard, maxBodyBytes: config.api.maxBodyBytes, clock }));
  router.use(secureprivacyRoutes({ config, db: o.db, store, guard: o.guard, urlGuard, clock, clientIdKey }));
  router.use(openApiRouter());
  router.use(deadLetterRouter({ siteId, db: o.db, guard: o.guard, maxBodyBytes: config.api.maxBodyBytes, clock, ...(o.onDeadLettersReplayed === undefined ? {} : { onReplayed: o.onDeadLettersReplayed }) }));

  const worker =
    o.webhooks === false
      ? undefined
      : createWebhookWorker({
          db: o.db,
          guard: urlGuard,
          clock,
          onError: (err) => o.log.warn({ err }, 'webhook worker'),
          onAttempt: (d, outcome) => o.log.info({ delivery: d.id, subscription: d.subscriptionId, outcome }, 'webhook delivery'),
          ...(o.webhooks ?? {}),
        });
  worker?.start();
  // Passed valid_until dates: audited and announced (consent.expired) once, across instances.
  const expiry = createExpirySweeper({
    db: o.db,
    clock,
    intervalMs: config.api.expiry.sweepMs,
    batchSize: config.api.expiry.batchSize,
    onCommitted: (r) => {
      for (const s of r.subjects) changedHere(s.siteId, s.subjectKey);
    },
    onError: (err) => o.log.warn({ err }, 'expiry sweep'),
  });
  expiry.start();

  return {
    router,
    store,
    storeSource,
    source,
    async close() {
      closing = true;
      await worker?.stop();
      await expiry.stop();
      await feedReady;
      await feed?.close();
    },
  };
}
