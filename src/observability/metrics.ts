import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration } from 'prom-client';

/** Prometheus metrics of one app instance (its own registry, so tests can run several apps). */
export interface Metrics {
  registry: Registry;
  eventsReceived: Counter<'client' | 'type'>;
  eventsRejected: Counter<'client' | 'code'>;
  decisions: Counter<'destination' | 'outcome' | 'reason'>;
  /** Holds begun (an event × destination waiting for consent or for queue room), by the reason they began with. */
  holdsStarted: Counter<'destination' | 'reason'>;
  /** Event × destination pairs held now: begun and not yet finally decided. */
  heldEvents: Gauge<'destination'>;
  deliveries: Counter<'destination' | 'outcome'>;
  consentLookups: Counter<'result'>;
  heldWaits: Counter<'reason'>;
  heldReasks: Counter<'phase' | 'result'>;
  /** Consent carried by hits written to the visitor's profile (config store.recordHitConsent), by result. */
  hitConsentWrites: Counter<'result'>;
  /** Decision receipts not stored (src/receipts/writer.ts): buffer_full or write_error. */
  receiptsDropped: Counter<'reason'>;
  deliveryDuration: Histogram<'destination'>;
  /** Group commits of the delivery journal, and the hits they made durable. */
  journalCommits: Counter;
  journalHits: Counter;
  /**
   * Event × destination pairs the journal handed to the pipeline again: hits resumed after a restart
   * or taken over from a lapsed instance, and replayed dead letters. Each is decided (and counted in
   * decisions_total) once more, so it is what events received leaves out (docs/monitoring.md).
   */
  eventsResumed: Counter<'destination'>;
  /** Exchanges with the upstream verify API by how they ended (http_429, answer, timeout, ...): requests made, not lookups. */
  upstreamVerifyCalls: Counter<'outcome'>;
  /** Read at each scrape from what `observe` was given (docs/monitoring.md). */
  deliveryQueued: Gauge<'destination'>;
  deliveryQueueCapacity: Gauge<'destination'>;
  ready: Gauge;
  /** Sets what the gauges above read (createApp calls it once; a later call replaces the sources). */
  observe(sources: GaugeSources): void;
}

/** What the scrape-time gauges read. */
export interface GaugeSources {
  /** Per destination: events accepted by its delivery queue and not finished, and the queue's bound. */
  deliveryQueues(): Iterable<{ destination: string; queued: number; capacity: number }>;
  /** False once shutdown began (what /readyz answers). */
  ready(): boolean;
}

/**
 * What the incrementers of a counter have counted and not yet handed to prom-client, flushed when
 * the counter is read (its `collect`, which every read of its values runs: a scrape, `get()`).
 */
const pendingOf = new WeakMap<object, Array<() => void>>();

/** A Counter whose reads first take in what its incrementers hold (see incrementer). */
function counter<L extends string>(config: CounterConfiguration<L>): Counter<L> {
  const flushers: Array<() => void> = [];
  const made = new Counter<L>({
    ...config,
    collect() {
      for (const flush of flushers) flush();
    },
  });
  pendingOf.set(made, flushers);
  return made;
}

/**
 * The per-hit way to count: the child counter is found in a tree of Maps keyed by the label values
 * in `names` order, without building a key string, and the counts wait in the leaf until the
 * counter is read. prom-client hashes and validates the label set on every `inc`, a child's too
 * (about 0.6 µs on the bench VM, four to five times per hit). Label values here come from config
 * and fixed reason names, so the tree stays small. Only for counters made by createMetrics.
 */
export function incrementer<L extends string>(target: Counter<L>, names: readonly L[]): (values: readonly string[], by?: number) => void {
  interface Node {
    next: Map<string, Node>;
    leaf?: { labels: Record<L, string>; pending: number; seen: boolean };
  }
  const flushers = pendingOf.get(target);
  if (flushers === undefined) throw new TypeError('incrementer: the counter was not made by createMetrics');
  const root: Node = { next: new Map() };
  const leaves: Array<NonNullable<Node['leaf']>> = [];
  flushers.push(() => {
    for (const leaf of leaves) {
      // The first flush of a leaf adds even 0, as `inc(labels, 0)` would have shown the series.
      if (leaf.pending === 0 && leaf.seen) continue;
      target.inc(leaf.labels, leaf.pending);
      leaf.pending = 0;
      leaf.seen = true;
    }
  });
  return (values, by = 1) => {
    // What prom-client would refuse at once is refused here, not at the next scrape.
    if (!(Number.isFinite(by) && by >= 0)) throw new TypeError(`incrementer: not a count: ${by}`);
    let node = root;
    for (const v of values) {
      let n = node.next.get(v);
      if (n === undefined) node.next.set(v, (n = { next: new Map() }));
      node = n;
    }
    if (node.leaf === undefined) {
      const labels = {} as Record<L, string>;
      names.forEach((name, i) => (labels[name] = values[i] ?? ''));
      node.leaf = { labels, pending: 0, seen: false };
      leaves.push(node.leaf);
    }
    node.leaf.pending += by;
  };
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  let sources: GaugeSources | undefined;
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tagwarden_' });
  return {
    registry,
    observe: (s) => {
      sources = s;
    },
    upstreamVerifyCalls: counter({
      name: 'tagwarden_upstream_verify_calls_total',
      help: 'Requests made to the upstream verify API, by how they ended: answer, malformed, timeout, network, closed, http_429, http_4xx, http_5xx, http_other.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    // Gauges read when scraped, not kept up to date on the per-hit path.
    deliveryQueued: new Gauge({
      name: 'tagwarden_delivery_queued_events',
      help: 'Events a destination\'s delivery queue holds and has not finished (batching, in flight, awaiting a retry); new events are refused at the capacity.',
      labelNames: ['destination'],
      registers: [registry],
      // Each worker of a host has its own queue and refuses at its own bound: the fullest one is what matters.
      aggregator: 'max',
      collect() {
        this.reset();
        for (const q of sources?.deliveryQueues() ?? []) this.set({ destination: q.destination }, q.queued);
      },
    }),
    deliveryQueueCapacity: new Gauge({
      name: 'tagwarden_delivery_queue_capacity_events',
      help: 'The bound of each destination\'s delivery queue (delivery.maxQueuedEvents).',
      labelNames: ['destination'],
      registers: [registry],
      // The same bound in every worker: one worker's, so queued / capacity is the fullest worker's fill.
      aggregator: 'max',
      collect() {
        this.reset();
        for (const q of sources?.deliveryQueues() ?? []) this.set({ destination: q.destination }, q.capacity);
      },
    }),
    ready: new Gauge({
      name: 'tagwarden_ready',
      help: '1 while the instance takes hits, 0 once shutdown began (what /readyz answers).',
      registers: [registry],
      // Over the workers of a host (server.workers): 1 while any takes hits (a rolling restart drains one at a time).
      aggregator: 'max',
      collect() {
        this.set(sources === undefined || sources.ready() ? 1 : 0);
      },
    }),
    eventsReceived: counter({
      name: 'tagwarden_events_received_total',
      help: 'Events accepted from clients, by client protocol and event type.',
      labelNames: ['client', 'type'],
      registers: [registry],
    }),
    journalCommits: counter({
      name: 'tagwarden_journal_commits_total',
      help: 'Transactions that made acknowledged hits durable in the delivery journal (group commits).',
      registers: [registry],
    }),
    journalHits: counter({
      name: 'tagwarden_journal_hits_total',
      help: 'Hits made durable in the delivery journal (hits / commits = rows per transaction).',
      registers: [registry],
    }),
    eventsRejected: counter({
      name: 'tagwarden_events_rejected_total',
      help: 'Events refused at ingest (invalid), by client and error code.',
      labelNames: ['client', 'code'],
      registers: [registry],
    }),
    eventsResumed: counter({
      name: 'tagwarden_events_resumed_total',
      help: 'Event x destination pairs the delivery journal decides again: hits resumed after a restart or a takeover, and replayed dead letters (each then counted once more in tagwarden_decisions_total).',
      labelNames: ['destination'],
      registers: [registry],
    }),
    decisions: counter({
      name: 'tagwarden_decisions_total',
      help: 'Final decisions, once per event and destination: forward, redact, drop (policy, template skip, vendor rule) or failed (render error, delivery queue refused), with the first reason. Holds are in tagwarden_holds_started_total and tagwarden_held_events.',
      labelNames: ['destination', 'outcome', 'reason'],
      registers: [registry],
    }),
    holdsStarted: counter({
      name: 'tagwarden_holds_started_total',
      help: 'Holds begun per destination (consent_resolving, consent_unknown:<c>, queue_full), once per event and destination however often it is decided again while held.',
      labelNames: ['destination', 'reason'],
      registers: [registry],
    }),
    heldEvents: new Gauge({
      name: 'tagwarden_held_events',
      help: 'Events held now per destination (waiting for consent, or with the journal for room in the delivery queue): holds begun and not yet finally decided.',
      labelNames: ['destination'],
      registers: [registry],
    }),
    deliveries: counter({
      name: 'tagwarden_deliveries_total',
      help: 'Vendor request outcomes per destination (delivered, retry_scheduled, failed, dropped), counted per event.',
      labelNames: ['destination', 'outcome'],
      registers: [registry],
    }),
    consentLookups: counter({
      name: 'tagwarden_consent_lookups_total',
      help: 'Consent asked of the upstream verify API: cache_hit, answer, no_consent, or the failure (upstream_rate_limited, upstream_timeout, ...).',
      labelNames: ['result'],
      registers: [registry],
    }),
    heldWaits: counter({
      name: 'tagwarden_held_waits_total',
      help: 'Lookup failures that kept a visitor\'s held events waiting for the upstream (once per failure and visitor), by failure.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    receiptsDropped: counter({
      name: 'tagwarden_receipts_dropped_total',
      help: 'Decision receipts not stored: buffer_full (the writer was behind) or write_error (a batch failed).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    hitConsentWrites: counter({
      name: 'tagwarden_hit_consent_writes_total',
      help: "Consent carried by hits and recorded on the visitor's profile (store.recordHitConsent): written, unchanged (the profile already said so), or error.",
      labelNames: ['result'],
      registers: [registry],
    }),
    heldReasks: counter({
      name: 'tagwarden_held_reasks_total',
      help: 'Lookups made again for visitors whose held events waited: probe (one, when the upstream may be asked again) or flow (the rest, after a probe answered), by result.',
      labelNames: ['phase', 'result'],
      registers: [registry],
    }),
    deliveryDuration: new Histogram({
      name: 'tagwarden_delivery_duration_seconds',
      help: 'Duration of vendor requests.',
      labelNames: ['destination'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}
