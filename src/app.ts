import express from 'express';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { explainRouter } from './api/explain.ts';
import type { Config } from './config/load.ts';
import type { PendingQueue } from './consent/pending.ts';
import { createDelivery, createMemoryOutbox, type Delivery, type DeliveryResult, type Outbox } from './delivery/delivery.ts';
import { createPool } from './lib/http/pool.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { resolveDestinations, type Resolution, type TemplateCatalog } from './destinations/resolve.ts';
import { shuttingDownError, UnavailableError } from './errors.ts';
import { errorHandler, notFound, requestIdLocals } from './http/errors.ts';
import { hitRouter } from './http/hit-router.ts';
import { segmentRoutes } from './ingest/segment-routes.ts';
import { ga4Routes } from './ingest/ga4-routes.ts';
import { metaPixelRoutes } from './ingest/meta-pixel-routes.ts';
import { guarded } from './proxy/host-guard.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createRateLimitedLog, type RateLimitedLog } from './observability/rate-limited-log.ts';
import { countUnresolved, createHeldQueue, createHitConsentRecorder, createIntake, createPipeline, type HeldEvent, type Pipeline } from './pipeline/index.ts';
import { consentResolverOf, signalReadingOf } from './pipeline/from-config.ts';
import { createVerifyClient } from './consent/upstream/verify-client.ts';
import { exchangeOutcome } from './consent/upstream/exchange-outcome.ts';
import { FleetBudget, storeGrantLog, verifyBudgetName } from './consent/upstream/fleet-budget.ts';
import { createConsentApi } from './api/consent/mount.ts';
import { apiGuard, authFailureThrottle } from './api/guard.ts';
import { createDashboard } from './api/ui/mount.ts';
import type { Db } from './store/db.ts';
import type { ChangeRelay } from './store/notify.ts';
import { createReceipts } from './receipts/compose.ts';
import type { ReceiptWriter } from './receipts/writer.ts';
import type { WebhookWorkerOptions } from './api/webhook-worker.ts';
import { verifySource } from './consent/upstream/source.ts';
import type { RequestSignals } from './consent/signals.ts';
import { scriptProxyRouter } from './proxy/scripts.ts';
import { createHitLinker } from './api/consent/hit-links.ts';
import type { Event } from './ingest/event.ts';
import { createRevocationCheck, type RevocationCheck } from './consent/revocation.ts';
import { createJournalRuntime, type JournalRuntime } from './delivery/journal-runtime.ts';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createPreview } from './preview/compose.ts';

export interface AppDeps {
  logger: Logger;
  templates: TemplateCatalog;
  /** Dispatcher of vendor deliveries; defaults to the 'vendors' pool (src/lib/http/pool.ts) sized from config. */
  agent?: Dispatcher;
  /** Where deliveries pending at shutdown or given up go; defaults to an in-memory outbox. */
  outbox?: Outbox;
  metrics?: Metrics;
  /**
   * Time and timers of consent resolution: the upstream verify client (its Retry-After, backoff
   * and budget), the pending queue's ages and sweep, and held events waiting out the upstream.
   * Also the time hits are stamped and decided with (receivedAt, consent's validity, the refusal
   * log's rate limit), and that of the consent store and its API (writes, key look-ups, rate
   * limits, the webhook worker). Default: the system clock. Delivery does not read it.
   */
  consentClock?: Clock;
  /** Dispatcher of the upstream verify client; defaults to its own 'upstream-verify' pool. */
  upstreamAgent?: Dispatcher;
  /**
   * The consent store's database (opened and migrated by src/store/open.ts). Without it there is no
   * consent store: no /api/v1 routes, and resolution goes from the hit straight to the upstream.
   */
  db?: Db;
  /** Webhook worker options (tests shorten its poll), or false not to start it. */
  webhooks?: Partial<WebhookWorkerOptions> | false;
  /** Time and timers of delivery (batch linger, retries, Retry-After pauses); tests drive a fake one. */
  deliveryClock?: Clock;
  /**
   * The other workers of this host (server.workers above 1, src/cluster/worker-link.ts): the store
   * and the journal are shared with them (journal leases even on SQLite), consent changes go to and
   * come from them, and /metrics answers with every worker's metrics added up.
   */
  peers?: Peers;
}

/** What a worker of several needs of the others (src/cluster/worker-link.ts provides it). */
export interface Peers {
  /** This worker's number, shown by /healthz (which process answered). */
  worker: number;
  relay: ChangeRelay;
  /** Every worker's metrics added up, Prometheus text. */
  metrics(): Promise<string>;
}

export interface TagwardenApp {
  /**
   * The request listener to serve: the request guard, then the hit routes (src/http/hit-router.ts)
   * or the Express app for the rest. `createHttpServer` in src/http/server.ts wraps it with the limits.
   */
  handler: RequestListener;
  pipeline: Pipeline;
  delivery: Delivery;
  metrics: Metrics;
  destinations: Resolution;
  pending: PendingQueue<HeldEvent>;
  /** The decision receipt writer (config receipts.enabled, with a store); absent: off. */
  receipts?: ReceiptWriter | undefined;
  /**
   * Takes over the journal's unfinished hits (this instance's before a restart or crash; on
   * PostgreSQL, those of instances whose lease lapsed) and processes them again, consent included.
   * Call once before listening; resolves with the number of hits resumed.
   */
  recover(): Promise<number>;
  /** Decides and queues every accepted hit not yet processed, then sends what is pending within `deadlineMs`. */
  flush(deadlineMs: number): Promise<void>;
  /**
   * Stops taking hits (collection routes answer 503, /readyz fails), then sends what is pending
   * within `graceMs`; whatever is left goes to the outbox. Held events stay held in the journal
   * (resumed, with their deadlines, at the next start); without a journal they are dropped as
   * `consent_unresolved`.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** Builds Tagwarden from a validated config. Does not listen: src/main.ts does. */
export function createApp(config: Config, deps: AppDeps): TagwardenApp {
  const log = deps.logger;
  const metrics = deps.metrics ?? createMetrics();
  const ownAgent = deps.agent === undefined ? createPool('vendors', { connections: config.delivery.connectionsPerOrigin }) : undefined;
  const agent = deps.agent ?? ownAgent!;
  const outbox = deps.outbox ?? createMemoryOutbox();
  // flush() and shutdown() measure their deadlines on it: what they bound is the time left for
  // deliveries, which wait on this clock (linger, retries, Retry-After), so a test that drives it
  // drives the deadline too, and the budget and the waits it bounds cannot drift apart.
  const deliveryClock = deps.deliveryClock ?? systemClock;

  // Deliveries not completed and retries, logged per destination, outcome and reason: 10 lines a minute each.
  const deliveryLog = createRateLimitedLog({ log, maxPerInterval: 10, intervalMs: 60_000, clock: deliveryClock });
  const resolution = resolveDestinations(config, deps.templates);
  for (const d of resolution.disabled) log.info({ destination: d.id, reason: d.reason }, 'destination disabled');

  const delivery = createDelivery({
    agent,
    outbox,
    ...(deps.deliveryClock === undefined ? {} : { clock: deps.deliveryClock }),
    retry: {
      maxAttempts: config.delivery.maxAttempts,
      maxTotalMs: config.delivery.maxTotalMs,
      baseDelayMs: config.delivery.baseDelayMs,
      maxDelayMs: config.delivery.maxDelayMs,
    },
    defaults: { maxQueuedEvents: config.delivery.maxQueuedEvents },
    destinations: Object.fromEntries(resolution.destinations.map((d) => [d.config.id, { requestTimeoutMs: d.config.timeoutMs, maxInFlight: d.config.maxInFlight }])),
    onResult: (r) => {
      // With the journal a full queue is not a failure: the pipeline tries the event again (decision
      // hold/queue_full). Counting or logging each try would report failures that did not happen
      // (and write a warn line per event per second).
      if (journal?.requeued(r) === true) return;
      onDeliveryResult(r, metrics, deliveryLog);
      preview?.delivered(r);
      receipts?.delivered(r);
      if (r.outcome !== 'retry_scheduled') revocation?.settled(r.destinationId, r.messageIds);
      journal?.onResult(r);
    },
    // Set once the consent store exists (below): before a retry, a revocation since the hit wins.
    recheck: (destinationId, messageIds) => (revocation === undefined ? new Set(messageIds) : revocation.recheck(destinationId, messageIds)),
  });
  let revocation: RevocationCheck | undefined;

  // The delivery journal: every accepted hit is committed before its 2xx and leaves the store once
  // every destination is done with it (src/store/journal.ts, docs/delivery.md).
  // Bound late, as the delivery's hooks are: the pipeline and the deferred queue are built below.
  const journal: JournalRuntime | undefined =
    deps.db !== undefined && config.delivery.journal.enabled
      ? createJournalRuntime({
          db: deps.db,
          siteId: config.site.id,
          owner: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
          // Several workers on one SQLite file: leases, and takeover of lapsed ones only, as on PostgreSQL.
          shared: deps.db.engine === 'postgres' || deps.peers !== undefined,
          destinationIds: resolution.destinations.map((d) => d.policy.id),
          journal: config.delivery.journal,
          maxQueuedEvents: config.delivery.maxQueuedEvents,
          clock: deps.deliveryClock ?? systemClock,
          log,
          metrics,
          queued: (id) => delivery.queued(id),
          decide: (h) => intake.decideLater(h),
          process: (event, signals, only, holdUntil) => pipeline.process(event, signals, undefined, only, holdUntil),
        })
      : undefined;

  const clock = deps.consentClock ?? systemClock;
  // Decision receipts (docs/receipts.md), written in batches off the hit's path.
  const receipts = createReceipts(config, deps.db, { clock, metrics, log });
  // Held events wait here; one that expires is dropped (consent_unresolved), never forwarded.
  const pending = createHeldQueue({ hold: config.hold, clock, metrics, log, settle: (event, id) => journal?.settle(event, id), expired: (h) => preview?.heldExpired(h), receipts });

  const resolver = consentResolverOf(config);
  // What a hit's signals are read with: the visitor id sources, and the geo header of site.jurisdiction.
  const identity = signalReadingOf(config);
  // Refused hits and events, logged at warn: at most 10 lines a minute per client and reason.
  const refusals = createRateLimitedLog({ log, maxPerInterval: 10, intervalMs: 60_000, clock });
  const verify = config.upstream.verify;
  // Its own pool, sized to its concurrency: lookups must not queue behind vendor deliveries.
  const upstreamAgent = verify === undefined ? undefined : (deps.upstreamAgent ?? createPool('upstream-verify', { connections: verify.maxConcurrent }));
  // The plan's budget shared by every instance on the store (docs/consent.md "Budget"); without a
  // store there is no fleet to share with, so the instance keeps its own.
  const storeErrors = createRateLimitedLog({ log, maxPerInterval: 1, intervalMs: 60_000, clock });
  const storeFailed = (key: string, msg: string) => (err: unknown) => storeErrors('warn', key, { err: err instanceof Error ? err.message : String(err) }, msg);
  const fleetBudget =
    verify === undefined || deps.db === undefined || verify.budgetScope !== 'fleet'
      ? undefined
      : new FleetBudget({
          limit: verify.requestsPerMinute,
          log: storeGrantLog(deps.db, { name: verifyBudgetName(verify.apiKey), limit: verify.requestsPerMinute }),
          onError: storeFailed('verify-budget', 'upstream verify budget: the store failed, no verify call made (fail closed)'),
        });
  if (verify !== undefined) log.info({ budgetScope: fleetBudget === undefined ? 'instance' : 'fleet', requestsPerMinute: verify.requestsPerMinute }, 'upstream verify budget');
  const upstream =
    verify === undefined || upstreamAgent === undefined
      ? undefined
      : verifySource(
          createVerifyClient({
            urlTemplate: verify.url,
            siteId: verify.siteId ?? config.site.id,
            apiKey: verify.apiKey,
            apiKeyHeader: verify.apiKeyHeader,
            categoryMap: verify.categories,
            requestsPerMinute: verify.requestsPerMinute,
            ...(fleetBudget === undefined ? {} : { budget: fleetBudget }),
            cacheTtlMs: verify.cacheTtlMs,
            negativeCacheTtlMs: verify.negativeCacheTtlMs,
            maxCacheEntries: verify.maxCacheEntries,
            timeoutMs: verify.timeoutMs,
            maxConcurrent: verify.maxConcurrent,
            maxWaiting: verify.maxWaiting,
            backoff: verify.backoff,
            breaker: verify.breaker,
            dispatcher: upstreamAgent,
            clock,
            onExchange: (x) => metrics.upstreamVerifyCalls.inc({ outcome: exchangeOutcome(x) }),
          }),
        );
  // Guesses of the admin key, by /debug and the dashboard's login alike, share one budget per address.
  const adminFailures = authFailureThrottle(config, clock);
  // The dashboard at /ui (docs/ui.md); its session counts as an admin key for the API guard.
  const dashboard = createDashboard({ config, clock, metrics, templates: deps.templates, resolution, failures: adminFailures, log }, deps.db !== undefined);
  // One guard (keys, rate limits, failure throttle) for every /api/v1 route.
  const guard = deps.db === undefined ? undefined : apiGuard(deps.db, config, clock, dashboard?.session, storeFailed('api-rate-limit', 'API rate limit: the store failed, request let through (fail open)'));
  // The consent store: first after the hit's own signals, before the upstream. A change re-decides
  // the events waiting for that visitor (bound late: the pipeline is built next).
  let recheck: (visitorId: string) => void = () => undefined;
  const consentApi =
    deps.db === undefined || guard === undefined
      ? undefined
      : createConsentApi({
          config,
          db: deps.db,
          log,
          guard,
          clock,
          upstream,
          // One cache of decoded TCF strings for hits' and profiles' strings alike.
          tcfReader: resolver.tcf,
          onVisitorChanged: (visitorId) => recheck(visitorId),
          ...(deps.peers === undefined ? {} : { relay: deps.peers.relay }),
          // A replay through the API is sent now, not at the next takeover (one lease period later).
          onDeadLettersReplayed: () => journal?.takeOver(),
          ...(deps.webhooks === undefined ? {} : { webhooks: deps.webhooks }),
        });
  if (consentApi !== undefined) {
    const categoriesById = new Map(resolution.destinations.map((d) => [d.policy.id, d.policy.categories]));
    revocation = createRevocationCheck({
      store: consentApi.storeSource,
      categoriesOf: (id) => categoriesById.get(id),
      ttlMs: config.delivery.maxTotalMs + 60_000,
      clock,
    });
  }
  // Consent carried by hits, written to the visitor's profile (store.recordHitConsent).
  const hitConsent =
    consentApi === undefined || !config.store.recordHitConsent
      ? undefined
      : createHitConsentRecorder({
          siteId: config.site.id,
          resolver,
          apply: (inputs, patches) => consentApi.store.apply(inputs, patches),
          readVisitor: (visitorId) => consentApi.storeSource.readVisitor(visitorId),
          log,
          count: (result) => metrics.hitConsentWrites.inc({ result }),
          clock,
        });
  // Preview (docs/preview.md): a marketer's own browser's hits shown live and sent in the vendors'
  // test modes or not at all. Its API is admin's, so it needs the store's keys and the admin key
  // its tokens are signed with.
  const preview =
    // Not with several workers: a preview lives in the memory of the worker that started it, and its
    // hits reaching another worker would be taken as ordinary hits and sent to the vendors for real.
    guard !== undefined && config.api.enabled && config.debug.adminKey !== undefined && deps.peers === undefined
      ? createPreview({ adminKey: config.debug.adminKey, guard, destinations: resolution.destinations, maxBodyBytes: config.api.maxBodyBytes, clock, log })
      : undefined;
  if (preview === undefined) {
    const reason = guard === undefined ? 'no store' : !config.api.enabled ? 'api.enabled is false' : config.debug.adminKey === undefined ? 'no debug.adminKey' : 'server.workers above 1';
    log.info({ reason }, 'preview off');
  }
  const pipeline = createPipeline({
    receipts,
    site: config.site,
    resolver,
    upstream: consentApi?.source ?? upstream,
    storedTcf: consentApi !== undefined,
    ...(hitConsent === undefined ? {} : { recordHitConsent: hitConsent.record }),
    destinations: resolution.destinations,
    delivery: {
      enqueue(dest, rendered, origin) {
        const queued = delivery.enqueue(dest, rendered);
        if (queued === 'queued' && origin !== undefined) {
          revocation?.remember(dest.id, rendered.messageId, origin, origin.receivedAt);
          journal?.enqueued(dest.id, origin.event);
        }
        return queued;
      },
    },
    pending,
    preview: preview?.sink,
    metrics,
    log,
    settle: (event, destinationId) => journal?.settle(event, destinationId),
    held: (event, destinationIds, deadline, reason) => journal?.held(event, destinationIds, deadline, reason),
    // Acknowledged and journaled: decided again (consent included) once the queue had time to drain.
    ...(journal === undefined ? {} : { requeue: (event: Event, signals: RequestSignals, destinationId: string) => journal.requeue(event, signals, destinationId) }),
    clock,
  });

  recheck = (visitorId) => {
    hitConsent?.forget(visitorId);
    pipeline.recheck(visitorId);
  };
  const linkHit = consentApi === undefined ? undefined : createHitLinker({ siteId: config.site.id, link: (s, a, b) => consentApi.store.link(s, a, b), log });

  let accepting = true;
  // Read when /metrics is scraped: queue depth per destination, and readiness (docs/monitoring.md).
  metrics.observe({
    deliveryQueues: () =>
      Object.entries(delivery.stats()).map(([destination, st]) => ({ destination, queued: st.queued, capacity: config.delivery.maxQueuedEvents })),
    ready: () => accepting,
  });
  // Every client's hits: accepted while the request is at hand, committed before the answer,
  // decided after it (src/pipeline/).
  const intake = createIntake({
    accepting: () => accepting,
    identity,
    resolver,
    cookie: config.identity.cookie,
    linkHit,
    preview: preview?.read,
    clock,
    journal,
    pipeline,
    log,
    metrics,
  });

  let shuttingDown: Promise<void> | undefined;
  const app = express();
  app.use(requestIdLocals);
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', config.server.trustProxyHops);

  app.get('/healthz', (_req, res) => {
    res.json(deps.peers === undefined ? { status: 'ok' } : { status: 'ok', worker: deps.peers.worker });
  });
  app.get('/readyz', (_req, res) => {
    if (!accepting) throw new UnavailableError('shutting down');
    res.json({ status: 'ready' });
  });
  app.get('/metrics', async (_req, res) => {
    // With several workers, whichever is scraped answers for all of them (docs/monitoring.md).
    res.type(metrics.registry.contentType).send(await (deps.peers?.metrics() ?? metrics.registry.metrics()));
  });

  if (consentApi !== undefined && config.api.enabled) {
    app.use(['/api/v1', '/api/universalconsent'], (_req, _res, next) => {
      // During shutdown a write is refused, not acknowledged and then lost with the connection.
      next(accepting ? undefined : shuttingDownError());
    });
    app.use(consentApi.router);
  }
  if (preview !== undefined) app.use(preview.router);
  if (config.debug.explain && config.debug.adminKey !== undefined) {
    app.use(
      explainRouter({
        adminKey: config.debug.adminKey,
        adminAuth: { failures: adminFailures, trustProxyHops: config.server.trustProxyHops },
        maxEventBytes: config.server.maxEventBytes,
        maxBatchBytes: config.server.maxBatchBytes,
        maxBatchEvents: config.server.maxBatchEvents,
        maxHeaderBytes: config.server.maxHeaderBytes,
        pipeline,
        destinations: resolution.destinations,
        identity,
        clock,
      }),
    );
  }
  if (dashboard !== undefined && guard !== undefined) app.use(dashboard.router(guard));
  const scripts = config.scripts.enabled ? scriptProxyRouter({ origins: config.scripts.origins, timeoutMs: config.scripts.timeoutMs, log }) : undefined;
  if (scripts !== undefined) app.use(scripts);
  app.use(notFound);
  app.use(errorHandler(log, refusals));

  // The client hit routes, each with its one implementation on node:http (src/http/hit-router.ts);
  // Express serves the rest. Hits are stamped on the consent clock, as their consent is read.
  const hitOptions = { trustProxyHops: config.server.trustProxyHops, metrics, accept: intake.accept, commit: intake.commit, refusals, clock };
  const hits = hitRouter(
    new Map([
      ...segmentRoutes({
        ...hitOptions,
        maxEventBytes: config.server.maxEventBytes,
        maxBatchBytes: config.server.maxBatchBytes,
        maxBatchEvents: config.server.maxBatchEvents,
        allowedOrigins: config.server.allowedOrigins,
      }),
      // gtag.js pointed at this domain (server_container_url / transport_url → /g/collect).
      ...ga4Routes({ ...hitOptions, maxBytes: config.server.maxBatchBytes }),
      // The Meta pixel pointed at this domain (fbevents.js → /tr): the same path from here on.
      ...metaPixelRoutes({ ...hitOptions, maxBytes: config.server.maxEventBytes }),
    ]),
    { accepting: () => accepting, log, refusals },
  );
  // Never an open proxy: every request's target and Host are checked first, once (400, 421); the
  // health probes and /metrics answer any Host (a load balancer asks the instance's address).
  const handler = guarded(
    config.server.allowedHosts,
    (req, res) => {
      if (!hits(req, res)) app(req, res);
    },
    ['/healthz', '/readyz', '/metrics'],
    refusals,
  );

  return {
    handler,
    pipeline,
    delivery,
    metrics,
    destinations: resolution,
    pending,
    receipts,
    recover: async () => (journal === undefined ? 0 : journal.recover()),
    async flush(deadlineMs) {
      const started = deliveryClock.now();
      intake.drain();
      await hitConsent?.settled();
      // Upstream answers decide held events, which may then be queued for delivery.
      await pipeline.settled(deadlineMs);
      await delivery.flush(Math.max(0, deadlineMs - (deliveryClock.now() - started)));
      await receipts?.flush();
    },
    shutdown(graceMs) {
      // Idempotent: a second signal or caller waits on the first shutdown.
      shuttingDown ??= stop(graceMs);
      return shuttingDown;
    },
  };

  async function stop(graceMs: number): Promise<void> {
    const started = deliveryClock.now();
    accepting = false;
    intake.drain();
    // Held events waiting out the upstream are not asked again. Lookups in flight get up to half
    // the grace to decide their events; what still waits then is never sent: it stays held in the
    // journal (resumed at the next start, its deadline unchanged), or without one is dropped
    // (consent_unresolved).
    pipeline.close();
    await pipeline.settled(Math.floor(graceMs / 2));
    // Profile writes of hits already answered finish before the store goes.
    await hitConsent?.settled();
    const stillHeld = pending.drain();
    if (journal === undefined) {
      for (const h of stillHeld) countUnresolved(metrics, h, receipts === undefined ? undefined : { sink: receipts, now: clock.now() });
      if (stillHeld.length > 0) log.info({ reason: 'consent_unresolved', events: stillHeld.length }, 'held events dropped at shutdown');
    }
    scripts?.close();
    dashboard?.close();
    preview?.close();
    try {
      // Receipts buffered so far are written before the store goes.
      await receipts?.close();
      await consentApi?.close();
      await upstream?.close();
      if (upstreamAgent !== undefined && deps.upstreamAgent === undefined) await upstreamAgent.close();
      await delivery.flush(Math.max(0, graceMs - (deliveryClock.now() - started)));
    } finally {
      if (ownAgent !== undefined) await ownAgent.close();
      // Finished hits leave the journal; the rest stays for the next start.
      await journal?.close();
    }
  }
}

function onDeliveryResult(r: DeliveryResult, metrics: Metrics, log: RateLimitedLog): void {
  metrics.deliveries.inc({ destination: r.destinationId, outcome: r.outcome }, r.messageIds.length);
  if (r.durationMs > 0) metrics.deliveryDuration.observe({ destination: r.destinationId }, r.durationMs / 1000);
  // The batch's first messageIds (a batch may hold a thousand), never a request id: a batch mixes many requests' events.
  const messageIds = r.messageIds.slice(0, MESSAGE_IDS_LOGGED);
  if (r.outcome === 'failed' || r.outcome === 'parked' || r.outcome === 'dropped') {
    log(
      'warn',
      `${r.destinationId}\u0000${r.outcome}\u0000${r.reason ?? ''}`,
      { destination: r.destinationId, outcome: r.outcome, code: r.error?.code, reason: r.reason, status: r.status, attempt: r.attempt, events: r.messageIds.length, messageIds, response: r.responseExcerpt },
      'delivery not completed',
    );
  } else if (r.outcome === 'retry_scheduled') {
    log('info', `${r.destinationId}\u0000retry`, { destination: r.destinationId, status: r.status, attempt: r.attempt, code: r.error?.code, reason: r.reason, retryInMs: r.retryInMs, events: r.messageIds.length, messageIds }, 'delivery retry scheduled');
  }
}

/** messageIds a delivery line lists (the rest are counted in `events`). */
const MESSAGE_IDS_LOGGED = 10;
