import type { Db, Queryable } from './db.ts';
import { backfillLinkAudit } from './consent.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

/**
 * Versioned schema migrations, applied in order at start-up for both engines (each in its own
 * transaction, recorded in `schema_migrations`). Never edit a migration that has shipped: add the
 * next one. Timestamps are integer milliseconds since the epoch; JSON is stored as text.
 */
export interface Migration {
  version: number;
  name: string;
  /** Statements, separated by `;` at the end of a line. */
  sql: (engine: Db['engine']) => string;
  /** A data step after the statements, in the same transaction (what SQL alone cannot do, e.g. hashing). */
  run?: (tx: Queryable, engine: Db['engine'], now: number) => Promise<unknown>;
}

const autoId = (engine: Db['engine']): string => (engine === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'consent store, audit log, API keys, webhooks',
    sql: (engine) => `
-- A visitor or user id of a site ('visitor:<id>' or 'user:<id>'). Subjects linked by an event or a
-- push share a profile: consent of one applies to the others.
CREATE TABLE subjects (
  site_id TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  profile_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (site_id, subject_key)
);
CREATE INDEX subjects_by_profile ON subjects (site_id, profile_id);

-- Per subject and consent item (a category id, or 'ref:<reference>' for consent to an object):
-- the input that won last-write-wins by the consent's own timestamp.
CREATE TABLE consent_items (
  site_id TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  item TEXT NOT NULL,
  status TEXT NOT NULL,
  consent_at BIGINT NOT NULL,
  valid_until BIGINT,
  source TEXT NOT NULL,
  audit_seq BIGINT NOT NULL,
  PRIMARY KEY (site_id, subject_key, item)
);

-- Per subject: what is not per item, and a version that increases with every change.
CREATE TABLE consent_records (
  site_id TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  version BIGINT NOT NULL,
  tcf_string TEXT,
  gcm TEXT,
  consent_type TEXT,
  source TEXT,
  geo_country TEXT,
  consent_at BIGINT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (site_id, subject_key)
);

-- Every consent input, append-only and hash-chained: hash = SHA-256(prev_hash || canonical row).
-- dedup_key makes re-imports of the same input no-ops.
CREATE TABLE audit_log (
  seq ${autoId(engine)},
  site_id TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  action TEXT NOT NULL,
  item TEXT,
  consent_at BIGINT,
  valid_until BIGINT,
  message TEXT,
  source TEXT NOT NULL,
  identification TEXT,
  identification_type TEXT,
  imported_at BIGINT NOT NULL,
  api_key_id TEXT,
  payload_hash TEXT NOT NULL,
  valid INTEGER NOT NULL,
  invalid_reason TEXT,
  applied INTEGER NOT NULL,
  dedup_key TEXT NOT NULL UNIQUE,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_by_subject ON audit_log (site_id, subject_key, seq);
CREATE INDEX audit_by_time ON audit_log (site_id, consent_at, seq);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  label TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT,
  last_used_at BIGINT
);

CREATE TABLE webhook_subscriptions (
  id TEXT PRIMARY KEY,
  site_id TEXT NOT NULL,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  filters TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  disabled_at BIGINT,
  disabled_reason TEXT
);

-- Durable webhook deliveries (at least once): written in the same transaction as the change.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  locked_until BIGINT,
  last_status INTEGER,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
`,
  },
  {
    version: 2,
    name: 'delivery journal',
    sql: (engine) => `
-- Acknowledged hits (src/store/journal.ts): the canonical event and what its decision needs, held
-- by the instance that answered it (owner) until lease_until, which it renews while it runs.
CREATE TABLE journal_hits (
  id ${autoId(engine)},
  site_id TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  payload TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  owner TEXT NOT NULL,
  lease_until BIGINT NOT NULL,
  tracked INTEGER NOT NULL
);
CREATE INDEX journal_hits_lease ON journal_hits (lease_until, id);
CREATE INDEX journal_hits_owner ON journal_hits (owner);

-- Per hit and destination, what did not finish at once: waiting (next attempt not before),
-- held (consent unknown, until not_before) or dead (given up at not_before, with the reason).
CREATE TABLE journal_work (
  hit_id BIGINT NOT NULL,
  destination_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'held', 'dead')),
  not_before BIGINT NOT NULL,
  attempts INTEGER NOT NULL,
  first_attempt_at BIGINT,
  reason TEXT,
  last_status INTEGER,
  excerpt TEXT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (hit_id, destination_id)
);
CREATE INDEX journal_work_state ON journal_work (state, not_before);
`,
  },
  {
    version: 3,
    name: 'journal: no hit indexes on SQLite',
    // SQLite's plan for the takeover scans journal_hits whatever the indexes (the lease condition is
    // OR'ed with a parameter), and one process owns the file, so the owner's lease renewal updates
    // nearly every row anyway. Each index still cost every append and every finish a B-tree
    // update, about a third of the store's CPU per hit (docs/performance.md). PostgreSQL, where
    // several instances share the table and the planner folds the parameter, keeps both.
    sql: (engine) =>
      engine === 'sqlite'
        ? `
DROP INDEX IF EXISTS journal_hits_lease;
DROP INDEX IF EXISTS journal_hits_owner;
`
        : '',
  },
  {
    version: 4,
    name: 'journal: the error code of a retry or dead letter',
    // TW_ERR_* (src/errors.ts): what an operator matches on, where `reason` is the detail.
    sql: () => `
ALTER TABLE journal_work ADD COLUMN code TEXT;
`,
  },
  {
    version: 5,
    name: 'audit log: the evidence an input carried besides its state',
    // Canonical JSON (src/store/audit.ts, auditAttributesJson) of what a seed says must be kept as
    // proof: Bloomreach's email and custom attributes, SecurePrivacy's Metadata, URI, Reference,
    // ConsentType and fingerprint (IP, user agent, geo). Hashed into the chain when present.
    sql: () => `
ALTER TABLE audit_log ADD COLUMN attributes TEXT;
`,
  },
  {
    version: 6,
    name: 'audit log: the profile links made before links were audited',
    // Links are state (who shares a profile) and the audit verification replays the state from the
    // log (issue 13), but links were not audited before this version: their rows are written once
    // here, as action `link` with source `migration` (src/store/consent.ts, backfillLinkAudit).
    sql: () => '',
    run: (tx, engine, now) => backfillLinkAudit(tx, engine, now),
  },
  {
    version: 7,
    name: 'SecurePrivacy ClientIds: the subject a derived ClientId names',
    // The ClientId of a CustomUserId is a one-way hash (src/store/client-id.ts), so the routes that
    // take a ClientId (seed secureprivacy-universal-consent-api.txt) look its subject up here.
    // Not a link to a visitor:<ClientId> subject: anyone can compute that id from a CustomUserId
    // and send it as a hit's visitor id, which would make it a handle on that person's profile.
    sql: () => `
CREATE TABLE client_ids (
  site_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (site_id, client_id)
);
`,
  },
  {
    version: 8,
    name: 'consent items: when a passed valid_until was announced',
    // src/store/expiry.ts: a granted item whose valid_until has passed gets one `expired` audit row
    // and one consent.expired webhook; the marker says it has had them (a later write of the item
    // clears it, src/store/consent.ts). The partial index holds only grants still to announce, so
    // the sweep reads the due ones and never walks the expiries announced long ago.
    sql: () => `
ALTER TABLE consent_items ADD COLUMN expiry_noted_at BIGINT;
CREATE INDEX consent_items_expiry_due ON consent_items (valid_until) WHERE status = 'granted' AND valid_until IS NOT NULL AND expiry_noted_at IS NULL;
`,
  },
  {
    version: 9,
    name: 'secrets of this store (the ClientId key)',
    // src/store/client-id.ts: SecurePrivacy ClientIds are keyed by a secret of the store, created
    // on first use, so nobody can compute a person's ClientId from their CustomUserId.
    sql: () => `
CREATE TABLE instance_secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
`,
  },
  {
    version: 10,
    name: 'decision receipts',
    // src/store/receipts.ts (docs/receipts.md): one row per event × destination decision, what it
    // saw and why, ids only. Pruned by age and by count (config receipts.*).
    sql: (engine) => `
CREATE TABLE decision_receipts (
  seq ${autoId(engine)},
  site_id TEXT NOT NULL,
  decided_at BIGINT NOT NULL,
  message_id TEXT NOT NULL,
  destination_id TEXT NOT NULL,
  visitor_key TEXT,
  user_key TEXT,
  phase TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX decision_receipts_by_visitor ON decision_receipts (site_id, visitor_key, seq);
CREATE INDEX decision_receipts_by_user ON decision_receipts (site_id, user_key, seq);
CREATE INDEX decision_receipts_by_time ON decision_receipts (decided_at);
`,
  },
  {
    version: 11,
    name: 'decision receipts delivery',
    // What became of a forwarded event's delivery, set on the final receipt when the result comes
    // after the receipt was written (src/receipts/writer.ts); found by message and destination.
    sql: () => `
ALTER TABLE decision_receipts ADD COLUMN delivery TEXT;
CREATE INDEX decision_receipts_by_message ON decision_receipts (site_id, message_id, destination_id);
`,
  },
  {
    version: 12,
    name: 'fleet-wide rate limits',
    // src/store/rate-limits.ts (docs/consent.md "Budget", docs/consent-api.md "API keys"):
    // several instances on one store share the upstream verify budget (a log of grants, read and
    // appended under a lock) and, optionally, the API keys' token buckets (one row per key,
    // one locked step each; version 0 = created, no state yet). Times are milliseconds; tokens
    // are fractional.
    sql: (engine) => `
CREATE TABLE rate_grants (
  seq ${autoId(engine)},
  name TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX rate_grants_by_name ON rate_grants (name, at);
CREATE TABLE rate_buckets (
  name TEXT NOT NULL,
  bucket_key TEXT NOT NULL,
  tokens ${engine === 'sqlite' ? 'REAL' : 'DOUBLE PRECISION'} NOT NULL,
  at BIGINT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (name, bucket_key)
);
`,
  },
];

/** Applies the migrations not yet applied; safe when several instances start at once. */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS, clock: Clock = systemClock): Promise<number[]> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const done = await db.transaction(async (tx) => {
      // Instances starting together on one PostgreSQL: the lock makes the second wait, then see it done.
      if (db.engine === 'postgres') await tx.run('SELECT pg_advisory_xact_lock(7240001)');
      if ((await tx.get('SELECT version FROM schema_migrations WHERE version = ?', [m.version])) !== undefined) return false;
      for (const statement of m.sql(db.engine).split(/;\s*$/m)) {
        const text = statement.replace(/^\s*--.*$/gm, '').trim();
        if (text !== '') await tx.run(text);
      }
      if (m.run !== undefined) await m.run(tx, db.engine, clock.now());
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, clock.now()]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}
