import { requestIdOf } from '../observability/request-id.ts';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { LRUCache } from 'lru-cache';
import type { ConsentResolver } from '../consent/resolve.ts';
import type { RequestSignals } from '../consent/signals.ts';
import { itemStatus } from '../consent/store-source.ts';
import type { ConsentState } from '../consent/state.ts';
import type { Event } from '../ingest/event.ts';
import type { Clock } from '../lib/clock.ts';
import { createRateLimitedLog } from '../observability/rate-limited-log.ts';
import type { ConsentInput, InputOutcome, RecordPatch, SubjectConsent, SubjectRef } from '../store/types.ts';

/**
 * Step "record hit consent" (config `store.recordHitConsent`), after a hit is accepted and
 * answered: the consent the hit's own signals resolve to is written to its visitor's profile, so a
 * later hit without signals is decided by it. Seed seeka-server-side-consent.txt: a browser-side
 * consent action is merged "into the user's profile", so "a single browser-side consent action
 * propagates to all server-side destinations on the next ingest", and "the most recent update wins
 * (last-write-wins on the profile)".
 *
 * What is written, per site category whose state a signal of the hit decided: the Segment
 * `categoryPreferences`, Consent Mode (gcs/gcd) and an invalid TCF string (it revokes what it
 * covers) as items; a TCF string as the profile's string (store-derived categories and vendor
 * checks come from it, src/consent/stored-tcf.ts). Sec-GPC is not written: the browser sends it
 * with every request, and it stays binding per hit. Each write is source `hit`, at the signal's own
 * time bounded by the hit's arrival (min(signal time, receivedAt)), so a client clock can never
 * date a write in the future.
 *
 * The hit path stays fast: nothing happens for hits without signals; a write is skipped when the
 * last one written for the visitor carried the same state (an LRU of digests) or the recorded
 * profile already says the same (read through the hit path's cache); writes go through the store
 * off the hit's path, and a failure is logged (no ids, no signal values) and counted, never the
 * hit's failure.
 */
export interface HitConsentDeps {
  siteId: string;
  resolver: ConsentResolver;
  /** The consent store's write (ConsentStore.apply): inputs and patches in one transaction. */
  apply(inputs: readonly ConsentInput[], patches: readonly RecordPatch[]): Promise<InputOutcome[]>;
  /** The visitor's recorded profile through the hit path's cache (StoreSource.readVisitor). */
  readVisitor(visitorId: string): Promise<SubjectConsent | undefined>;
  log: Logger;
  /** Counts each hit with signals: `written`, `unchanged` or `error`. */
  count(result: 'written' | 'unchanged' | 'error'): void;
  clock: Clock;
  /** Visitors whose last written digest is remembered. Default 100,000. */
  maxEntries?: number;
}

export interface HitConsentRecorder {
  /** Records what the hit's signals say (never throws; the write runs in the background). */
  record: (event: Event, signals: RequestSignals, requestConsent?: ConsentState) => void;
  /** The visitor's profile changed (a push, an import, another instance): its digest is stale. */
  forget(visitorId: string): void;
  /** Resolves when no write started before the call is in flight (flush, shutdown). */
  settled(): Promise<void>;
}

/** Category sources that are the hit's own consent signals (src/consent/resolve.ts). */
const RECORDED = new Set(['segment', 'segment:invalid', 'gcm', 'tcf:invalid']);
/** Longest message id kept as evidence in the audit row. */
const MAX_EVIDENCE_ID = 200;

interface HitItem {
  item: string;
  status: 'granted' | 'denied';
  at: number;
  signal: string;
  /** A grant dated after the hit's arrival (src/consent/merge.ts): never written over a stored denial. */
  late?: true;
}

interface HitRecord {
  items: HitItem[];
  tcf?: { value: string; at: number };
  digest: string;
}

/** True when the hit carries a consent signal besides GPC (nothing to record otherwise). */
function carriesSignals(event: Event, signals: RequestSignals): boolean {
  const prefs = event.context.consent?.categoryPreferences;
  return signals.tcf !== undefined || signals.gcs !== undefined || signals.gcd !== undefined || (prefs !== null && typeof prefs === 'object');
}

/** Recorded state equal to what the hit says: every item with the same effective status, the same TCF string. */
function alreadyRecorded(profile: SubjectConsent | undefined, rec: HitRecord, now: number): boolean {
  if (profile === undefined) return false;
  for (const i of rec.items) {
    const s = Object.hasOwn(profile.items, i.item) ? profile.items[i.item] : undefined;
    if (s === undefined || itemStatus(s, now) !== i.status) return false;
  }
  return rec.tcf === undefined || profile.tcfString === rec.tcf.value;
}

/** The profile states the item, and it reads as denied (a denial, or a grant expired). */
function deniedIn(profile: SubjectConsent | undefined, item: string, now: number): boolean {
  const s = profile !== undefined && Object.hasOwn(profile.items, item) ? profile.items[item] : undefined;
  return s !== undefined && itemStatus(s, now) === 'denied';
}

export function createHitConsentRecorder(deps: HitConsentDeps): HitConsentRecorder {
  const { clock } = deps;
  // A store that fails every write must not write a line per hit: 10 a minute per kind of failure.
  const failures = createRateLimitedLog({ log: deps.log, maxPerInterval: 10, intervalMs: 60_000, clock });
  const written = new LRUCache<string, string>({ max: deps.maxEntries ?? 100_000 });
  /** Digest of the write in flight per visitor: the same state again meanwhile is not written twice. */
  const writing = new Map<string, string>();
  const inFlight = new Set<Promise<void>>();

  function whatTheHitSays(event: Event, signals: RequestSignals, requestConsent: ConsentState | undefined): HitRecord | undefined {
    const receivedAt = Date.parse(event.receivedAt);
    if (!Number.isFinite(receivedAt)) return undefined;
    // The hit's own signals only: consent from the store or the upstream must not be written back.
    const state = requestConsent ?? deps.resolver.fromRequest(event, signals, new Date(clock.now()));
    const bounded = (at: number | undefined): number => (at !== undefined && Number.isFinite(at) ? Math.min(at, receivedAt) : receivedAt);
    const items: HitItem[] = [];
    for (const [item, c] of Object.entries(state.categories)) {
      if (c.status === 'unknown' || !RECORDED.has(c.source)) continue;
      const hitItem: HitItem = { item, status: c.status, at: bounded(c.at), signal: c.source };
      if (c.late === true) hitItem.late = true;
      items.push(hitItem);
    }
    let tcf: HitRecord['tcf'];
    if (signals.tcf !== undefined) {
      const result = state.tcf?.result;
      tcf = { value: signals.tcf.value, at: result?.ok === true ? bounded(result.tcf.lastUpdatedMs) : receivedAt };
    }
    if (items.length === 0 && tcf === undefined) return undefined;
    // Times are left out: the same state re-sent by every hit is not a change worth a write.
    const digest = JSON.stringify([items.map((i) => [i.item, i.status]), tcf?.value ?? null]);
    return tcf === undefined ? { items, digest } : { items, tcf, digest };
  }

  function toWrite(rec: HitRecord, subject: SubjectRef, event: Event): { inputs: ConsentInput[]; patches: RecordPatch[] } {
    const evidence = { messageId: event.messageId.slice(0, MAX_EVIDENCE_ID) };
    const payloadHash = createHash('sha256').update(JSON.stringify([subject.id, event.messageId, rec.digest])).digest('hex');
    const inputs = rec.items.map((i): ConsentInput => {
      const input: ConsentInput = {
        siteId: deps.siteId,
        subject,
        action: i.status === 'granted' ? 'accept' : 'reject',
        item: i.item,
        consentAt: i.at,
        validUntil: null,
        source: 'hit',
        // An invalid signal is stored as invalid, and revokes (as the consent API stores one).
        valid: !i.signal.endsWith(':invalid'),
        payloadHash,
        attributes: { ...evidence, signal: i.signal },
      };
      if (!input.valid) input.invalidReason = `invalid ${i.signal.slice(0, -':invalid'.length)} signal`;
      return input;
    });
    const patches: RecordPatch[] =
      rec.tcf === undefined ? [] : [{ siteId: deps.siteId, subject, consentAt: rec.tcf.at, tcfString: rec.tcf.value, source: 'hit', payloadHash, attributes: { ...evidence, signal: 'tcf' } }];
    return { inputs, patches };
  }

  async function write(visitorId: string, rec: HitRecord, event: Event): Promise<void> {
    const subject: SubjectRef = { type: 'visitor', id: visitorId };
    try {
      const profile = await deps.readVisitor(visitorId);
      // A grant dated after the hit's arrival, written at the arrival, would outrank a revocation
      // stored before it: like the hit's own decision (src/consent/merge.ts), it never overrides a denial.
      const kept = rec.items.filter((i) => i.late !== true || !deniedIn(profile, i.item, clock.now()));
      const toRecord = kept.length === rec.items.length ? rec : { ...rec, items: kept };
      if ((toRecord.items.length === 0 && toRecord.tcf === undefined) || alreadyRecorded(profile, toRecord, clock.now())) {
        deps.count('unchanged');
      } else {
        const { inputs, patches } = toWrite(toRecord, subject, event);
        await deps.apply(inputs, patches);
        deps.count('written');
      }
      // After the write's own change notification (which forgets the visitor's digest).
      written.set(visitorId, rec.digest);
    } catch (err) {
      deps.count('error');
      // No ids (but the request's) and no signal values: the error's kind only.
      const code = err !== null && typeof err === 'object' && 'code' in err ? String(err.code) : undefined;
      failures('warn', `write:${code ?? ''}`, { requestId: requestIdOf(event), code, name: err instanceof Error ? err.name : typeof err }, 'recording consent carried by a hit failed');
    } finally {
      if (writing.get(visitorId) === rec.digest) writing.delete(visitorId);
    }
  }

  return {
    record(event, signals, requestConsent) {
      const visitorId = signals.visitor?.id;
      if (visitorId === undefined || !carriesSignals(event, signals)) return;
      let rec: HitRecord | undefined;
      try {
        rec = whatTheHitSays(event, signals, requestConsent);
      } catch (err) {
        deps.count('error');
        failures('warn', 'read', { requestId: requestIdOf(event), name: err instanceof Error ? err.name : typeof err }, 'reading consent carried by a hit failed');
        return;
      }
      if (rec === undefined) return;
      if (written.get(visitorId) === rec.digest || writing.get(visitorId) === rec.digest) {
        deps.count('unchanged');
        return;
      }
      writing.set(visitorId, rec.digest);
      const p = write(visitorId, rec, event).finally(() => inFlight.delete(p));
      inFlight.add(p);
    },
    forget(visitorId) {
      written.delete(visitorId);
    },
    async settled() {
      await Promise.allSettled([...inFlight]);
    },
  };
}
