/**
 * Consent-change webhooks: subscriptions and their durable deliveries (at least once).
 *
 * A consent write calls `enqueueForChange` (a ChangeHook) INSIDE its transaction: the delivery
 * rows commit with the change or not at all, so no committed change is missed and no rolled-back
 * change is announced. The worker (src/api/webhook-worker.ts) claims due rows (`claimDue`), sends
 * them and records the outcome (`recordResult`). A worker that dies between claim and result
 * leaves the row locked until `locked_until`; after that it is claimed again: a receiver may see
 * one event twice, always with the same `webhook-id` (the delivery id), and must deduplicate on it.
 *
 * Delivery statuses: `pending` (due at `next_attempt_at`, unless a claim's `locked_until` is in
 * the future), `delivered` (2xx), `failed` (attempts exhausted or a permanent refusal), `gone`
 * (the receiver answered 410: the subscription is disabled), `cancelled` (the subscription was
 * disabled before it was sent). `attempts` counts claims, so a delivery that crashes its worker
 * every time still runs out of attempts.
 */
import { powerOfTwoParts } from './parts.ts';
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../errors.ts';
import type { Db, Param, Queryable } from './db.ts';
import { subjectKey, type ChangeHook, type ChangesHook, type ConsentChange } from './types.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

export interface WebhookFilters {
  /** Only changes of these items (category ids or `ref:<reference>`). Absent: every item. */
  items?: string[];
  /** Only changes whose item state came from these sources (`push`, `import`, …). Absent: every source. */
  sources?: string[];
  /**
   * SecurePrivacy's subscription criteria (seed secureprivacy-universal-consent-api.txt): only
   * changes of a `ref:` item that the change's own subject holds, whose winning input's evidence
   * (audit attributes) has one of these CustomUserId / Reference / ConsentType values. Linked
   * subjects that merely see the item through their profile do not match, so one SecurePrivacy
   * record change is one delivery.
   */
  customUserIds?: string[];
  references?: string[];
  consentTypes?: string[];
}

const EVIDENCE_FILTERS = { customUserIds: 'CustomUserId', references: 'Reference', consentTypes: 'ConsentType' } as const;
const FILTER_KEYS = ['items', 'sources', ...Object.keys(EVIDENCE_FILTERS)];

function hasEvidenceFilter(f: WebhookFilters): boolean {
  return f.customUserIds !== undefined || f.references !== undefined || f.consentTypes !== undefined;
}

export interface NewSubscription {
  siteId: string;
  url: string;
  filters?: WebhookFilters;
}

/** A subscription as the store records it: `url` already checked and normalised by the URL guard, `secret` the signing secret (`whsec_…`). */
export interface CheckedSubscription extends NewSubscription {
  secret: string;
}

export interface Subscription {
  id: string;
  siteId: string;
  url: string;
  filters: WebhookFilters;
  createdAt: number;
  disabledAt: number | null;
  disabledReason: string | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'gone' | 'cancelled';

/**
 * What a delivery announces: `consent.changed` (a write changed what a read returns) or
 * `consent.expired` (a granted item's valid_until passed, src/store/expiry.ts).
 */
export type WebhookEventType = 'consent.changed' | 'consent.expired';

/** The JSON body of a `consent.changed` webhook. */
/** The body of a delivery: the change (see ConsentChange) with the event's id and type. */
export interface WebhookPayload extends ConsentChange {
  /** The delivery id: the event's id, sent as `webhook-id` on every attempt. */
  id: string;
  type: WebhookEventType;
}

export interface ClaimedDelivery {
  id: string;
  subscriptionId: string;
  url: string;
  /** The subscription's signing secret. */
  secret: string;
  /** The exact body to send (and sign). */
  payload: string;
  /** Attempts including this one. Pass it back to recordResult as the claim's fence. */
  attempts: number;
  createdAt: number;
  lockedUntil: number;
}

export interface Delivery {
  id: string;
  subscriptionId: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  lockedUntil: number | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

interface OutcomeBase {
  /** When the attempt ended. */
  at: number;
  /**
   * The claim's `attempts`: the result is recorded only if no later claim took the delivery
   * (a worker that outlived its lock must not overwrite its successor's result). Omit to record
   * unconditionally.
   */
  attempt?: number;
  /** HTTP status of the attempt, when there was a response. */
  status?: number;
  /** Short, secret-free description of the failure. */
  error?: string;
}

export type DeliveryOutcome =
  | (OutcomeBase & { kind: 'delivered' })
  | (OutcomeBase & { kind: 'retry'; nextAttemptAt: number })
  | (OutcomeBase & { kind: 'failed' })
  /** 410 Gone: the delivery stops and the subscription is disabled (reason 'gone'). */
  | (OutcomeBase & { kind: 'gone' });

export interface SubscriptionOptions {
  /** When it is created; default the system clock. */
  clock?: Clock;
}

const MAX_FILTER_VALUES = 200;
const MAX_ERROR_CHARS = 500;

function newId(prefix: string): string {
  // base64url has no '.', which the signed content uses as separator.
  return prefix + randomBytes(16).toString('base64url');
}

function parseFilters(filters: unknown): WebhookFilters {
  if (filters === undefined || filters === null) return {};
  if (typeof filters !== 'object' || Array.isArray(filters)) throw new ValidationError('filters: object expected', { details: { issues: [{ path: 'filters', message: 'object expected' }] } });
  const out: WebhookFilters = {};
  for (const [key, value] of Object.entries(filters as Record<string, unknown>)) {
    const path = `filters.${key}`;
    const fail = (message: string): never => {
      throw new ValidationError(`${path}: ${message}`, { details: { issues: [{ path, message }] } });
    };
    if (!FILTER_KEYS.includes(key)) fail(`unknown filter (${FILTER_KEYS.join(', ')})`);
    if (value === undefined) continue;
    if (!Array.isArray(value) || value.length === 0) fail('a non-empty array of strings expected (omit the filter to match everything)');
    const list = value as unknown[];
    if (list.length > MAX_FILTER_VALUES) fail(`at most ${MAX_FILTER_VALUES} values`);
    if (!list.every((v) => typeof v === 'string' && v !== '' && v.length <= 200)) fail('non-empty strings of at most 200 characters expected');
    out[key as keyof WebhookFilters] = [...new Set(list as string[])];
  }
  return out;
}

/**
 * Records a subscription whose URL the caller has checked and whose secret it has made (the store
 * knows no HTTP: src/api/webhook-subscriptions.ts does both). The secret is stored as is because
 * signing needs it (an HMAC key cannot be hashed away), so the database must be protected like the
 * config's secrets: access control, encrypted backups.
 */
export async function insertSubscription(db: Db | Queryable, sub: CheckedSubscription, opts: SubscriptionOptions = {}): Promise<{ id: string }> {
  if (typeof sub.siteId !== 'string' || sub.siteId === '') throw new ValidationError('siteId: required', { details: { issues: [{ path: 'siteId', message: 'required' }] } });
  const filters = parseFilters(sub.filters);
  const id = newId('whs_');
  await db.run('INSERT INTO webhook_subscriptions (id, site_id, url, secret, filters, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
    id,
    sub.siteId,
    sub.url,
    sub.secret,
    JSON.stringify(filters),
    (opts.clock ?? systemClock).now(),
  ]);
  return { id };
}

interface SubscriptionRow extends Record<string, unknown> {
  id: string;
  site_id: string;
  url: string;
  filters: string;
  created_at: number;
  disabled_at: number | null;
  disabled_reason: string | null;
}

function toSubscription(r: SubscriptionRow): Subscription {
  return {
    id: r.id,
    siteId: r.site_id,
    url: r.url,
    filters: JSON.parse(r.filters) as WebhookFilters,
    createdAt: Number(r.created_at),
    disabledAt: r.disabled_at === null ? null : Number(r.disabled_at),
    disabledReason: r.disabled_reason,
  };
}

/** A site's subscriptions, disabled ones included (disabledAt set), oldest first. Never the secrets. */
export async function listSubscriptions(db: Db | Queryable, siteId: string, opts: { includeDisabled?: boolean } = {}): Promise<Subscription[]> {
  const rows = await db.all<SubscriptionRow>(
    `SELECT id, site_id, url, filters, created_at, disabled_at, disabled_reason FROM webhook_subscriptions WHERE site_id = ?${opts.includeDisabled === false ? ' AND disabled_at IS NULL' : ''} ORDER BY created_at, id`,
    [siteId],
  );
  return rows.map(toSubscription);
}

/** One subscription of a site (without its secret), or undefined. */
export async function getSubscription(db: Db | Queryable, siteId: string, id: string): Promise<Subscription | undefined> {
  const row = await db.get<SubscriptionRow>('SELECT id, site_id, url, filters, created_at, disabled_at, disabled_reason FROM webhook_subscriptions WHERE site_id = ? AND id = ?', [siteId, id]);
  return row === undefined ? undefined : toSubscription(row);
}

async function disable(tx: Queryable, id: string, at: number, reason: string): Promise<boolean> {
  const n = await tx.run('UPDATE webhook_subscriptions SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL', [at, reason, id]);
  // Its deliveries still waiting will not be sent: kept (status cancelled) as a record.
  await tx.run("UPDATE webhook_deliveries SET status = 'cancelled', locked_until = NULL, updated_at = ? WHERE subscription_id = ? AND status = 'pending'", [at, id]);
  return n > 0;
}

/**
 * Disables a subscription (rows are kept: deliveries reference them, and the history stays
 * readable); its pending deliveries are cancelled. False when it does not exist on this site or
 * was already disabled.
 */
export async function deleteSubscription(db: Db, siteId: string, id: string, opts: { clock?: Clock; reason?: string } = {}): Promise<boolean> {
  const at = (opts.clock ?? systemClock).now();
  return db.transaction(async (tx) => {
    const row = await tx.get('SELECT id FROM webhook_subscriptions WHERE site_id = ? AND id = ? AND disabled_at IS NULL', [siteId, id]);
    if (row === undefined) return false;
    return disable(tx, id, at, opts.reason ?? 'deleted');
  });
}

/**
 * Whether a change concerns a subscription: with no filters, every change; otherwise at least
 * one changed item must pass every filter given. A change of the record part only (TCF string,
 * gcm) carries no item, so only unfiltered subscriptions receive it.
 */
export function matchesFilters(filters: WebhookFilters, change: ConsentChange, evidence?: ReadonlyMap<string, Readonly<Record<string, unknown>>>): boolean {
  const byEvidence = hasEvidenceFilter(filters);
  if (filters.items === undefined && filters.sources === undefined && !byEvidence) return true;
  const evidenceMatches = (item: string): boolean => {
    const e = evidence?.get(item);
    if (e === undefined) return false;
    return Object.entries(EVIDENCE_FILTERS).every(([key, field]) => {
      const wanted = filters[key as keyof typeof EVIDENCE_FILTERS];
      const v = e[field];
      return wanted === undefined || (typeof v === 'string' && wanted.includes(v));
    });
  };
  return change.items.some(
    (i) => (filters.items === undefined || filters.items.includes(i.item)) && (filters.sources === undefined || filters.sources.includes(i.source)) && (!byEvidence || evidenceMatches(i.item)),
  );
}

/** The evidence of the changed `ref:` items the change's own subject holds (for the evidence filters). */
async function changeEvidence(tx: Queryable, change: ConsentChange): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  const refs = change.items.map((i) => i.item).filter((item) => item.startsWith('ref:'));
  if (refs.length === 0) return out;
  const rows = await tx.all<{ item: string; attributes: string | null }>(
    `SELECT i.item, a.attributes FROM consent_items i JOIN audit_log a ON a.seq = i.audit_seq WHERE i.site_id = ? AND i.subject_key = ? AND i.item IN (${refs.map(() => '?').join(', ')})`,
    [change.siteId, subjectKey(change.subject), ...refs],
  );
  for (const r of rows) {
    if (r.attributes === null) continue;
    const v = JSON.parse(r.attributes) as unknown;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.set(r.item, v as Record<string, unknown>);
  }
  return out;
}

/**
 * The ChangeHook the consent store calls inside its writing transaction: one pending delivery per
 * active subscription of the site whose filters match, due at once.
 */
export const enqueueForChange: ChangeHook = (tx, change) => enqueueEvent(tx, change, 'consent.changed');

/**
 * enqueueForChange for all the changes of one write (a ChangesHook), in order: the subscriptions
 * are read once, not once per changed subject (an import's chunk changes hundreds).
 */
export const enqueueForChanges: ChangesHook = async (tx, changes) => {
  if (changes.length === 0) return;
  const subs = await activeSubscriptions(tx, changes[0]!.siteId);
  for (const change of changes) await enqueueEvent(tx, change, 'consent.changed', change.siteId === changes[0]!.siteId ? subs : undefined);
};

type ActiveSubscription = { id: string; filters: WebhookFilters };

async function activeSubscriptions(tx: Queryable, siteId: string): Promise<ActiveSubscription[]> {
  const subs = await tx.all<{ id: string; filters: string }>('SELECT id, filters FROM webhook_subscriptions WHERE site_id = ? AND disabled_at IS NULL ORDER BY id', [siteId]);
  return subs.map((sub) => ({ id: sub.id, filters: JSON.parse(sub.filters) as WebhookFilters }));
}

/** The same for a passed valid_until (src/store/expiry.ts): `consent.expired`, same shape, same filters. */
export const enqueueForExpiry: ChangeHook = (tx, change) => enqueueEvent(tx, change, 'consent.expired');

async function enqueueEvent(tx: Queryable, change: ConsentChange, type: WebhookEventType, known?: readonly ActiveSubscription[]): Promise<void> {
  const parsed = known ?? (await activeSubscriptions(tx, change.siteId));
  const evidence = parsed.some((sub) => hasEvidenceFilter(sub.filters)) ? await changeEvidence(tx, change) : undefined;
  for (const sub of parsed) {
    if (!matchesFilters(sub.filters, change, evidence)) continue;
    const id = newId('msg_');
    const payload: WebhookPayload = {
      id,
      type,
      siteId: change.siteId,
      subject: { type: change.subject.type, id: change.subject.id },
      version: change.version,
      items: change.items,
      recordChanged: change.recordChanged,
      at: change.at,
    };
    await tx.run(
      "INSERT INTO webhook_deliveries (id, subscription_id, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
      [id, sub.id, JSON.stringify(payload), change.at, change.at, change.at],
    );
  }
}

export interface ClaimOptions {
  now: number;
  /** Most deliveries claimed. */
  limit: number;
  /** How long the claim holds: longer than one attempt takes (timeout included). */
  lockMs: number;
}

/**
 * Claims the pending deliveries due at `now` whose previous claim (if any) has lapsed, of active
 * subscriptions, oldest due first: sets `locked_until = now + lockMs` and counts the attempt. On
 * PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED` in the claiming transaction, so
 * several instances claim disjoint sets without waiting on each other; SQLite transactions are
 * serialised, which gives the same.
 */
export async function claimDue(db: Db, opts: ClaimOptions): Promise<ClaimedDelivery[]> {
  const limit = Math.max(1, Math.floor(opts.limit));
  const lockedUntil = opts.now + opts.lockMs;
  return db.transaction(async (tx) => {
    const rows = await tx.all<{ id: string; subscription_id: string; payload: string; attempts: number; created_at: number; url: string; secret: string }>(
      `SELECT d.id, d.subscription_id, d.payload, d.attempts, d.created_at, s.url, s.secret
       FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
       WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND (d.locked_until IS NULL OR d.locked_until <= ?) AND s.disabled_at IS NULL
       ORDER BY d.next_attempt_at, d.id LIMIT ?${db.engine === 'postgres' ? ' FOR UPDATE OF d SKIP LOCKED' : ''}`,
      [opts.now, opts.now, limit],
    );
    if (rows.length === 0) return [];
    const ids: Param[] = rows.map((r) => r.id);
    for (const part of powerOfTwoParts(ids, 256)) {
      await tx.run(`UPDATE webhook_deliveries SET locked_until = ?, attempts = attempts + 1, updated_at = ? WHERE id IN (${part.map(() => '?').join(', ')})`, [lockedUntil, opts.now, ...part]);
    }
    return rows.map((r) => ({
      id: r.id,
      subscriptionId: r.subscription_id,
      url: r.url,
      secret: r.secret,
      payload: r.payload,
      attempts: Number(r.attempts) + 1,
      createdAt: Number(r.created_at),
      lockedUntil,
    }));
  });
}

/**
 * Records one attempt's outcome. False when nothing was recorded: the delivery is unknown, no
 * longer pending, or (with `outcome.attempt`) was claimed again since.
 */
export async function recordResult(db: Db, id: string, outcome: DeliveryOutcome): Promise<boolean> {
  const error = outcome.error === undefined ? null : outcome.error.slice(0, MAX_ERROR_CHARS);
  const status = outcome.status ?? null;
  const fence = outcome.attempt === undefined ? '' : ' AND attempts = ?';
  const fenceParams: Param[] = outcome.attempt === undefined ? [] : [outcome.attempt];
  const next: Record<DeliveryOutcome['kind'], DeliveryStatus> = { delivered: 'delivered', retry: 'pending', failed: 'failed', gone: 'gone' };
  return db.transaction(async (tx) => {
    const n = await tx.run(
      `UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, locked_until = NULL, last_status = ?, last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'${fence}`,
      [next[outcome.kind], outcome.kind === 'retry' ? outcome.nextAttemptAt : outcome.at, status, error, outcome.at, id, ...fenceParams],
    );
    if (n === 0) return false;
    if (outcome.kind === 'gone') {
      const row = await tx.get<{ subscription_id: string }>('SELECT subscription_id FROM webhook_deliveries WHERE id = ?', [id]);
      if (row !== undefined) await disable(tx, row.subscription_id, outcome.at, 'gone');
    }
    return true;
  });
}

interface DeliveryRow extends Record<string, unknown> {
  id: string;
  subscription_id: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  locked_until: number | null;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const num = (v: number | null): number | null => (v === null ? null : Number(v));

/** A subscription's deliveries, oldest first (the admin view and tests). */
export async function listDeliveries(db: Db | Queryable, subscriptionId: string, opts: { limit?: number } = {}): Promise<Delivery[]> {
  const rows = await db.all<DeliveryRow>('SELECT * FROM webhook_deliveries WHERE subscription_id = ? ORDER BY created_at, id LIMIT ?', [subscriptionId, opts.limit ?? 100]);
  return rows.map((r) => ({
    id: r.id,
    subscriptionId: r.subscription_id,
    payload: r.payload,
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lockedUntil: num(r.locked_until),
    lastStatus: num(r.last_status),
    lastError: r.last_error,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }));
}
