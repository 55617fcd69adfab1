import { supersedes, type ConsentClaim } from '../consent/last-write-wins.ts';
import { storableText, type AuditColumns } from './audit.ts';

/**
 * The consent state the audit log implies, computed from the log alone (issue 13: "state
 * verifiable from the log"). Pure: rows in, state out, no database. Used twice, so that there is
 * one implementation of "what the log means":
 * - `verifyAuditState` (src/store/audit.ts) replays the whole log and compares the result with the
 *   stored tables, so a direct edit of consent_items, consent_records or subjects is caught;
 * - expiring invalid events (src/store/consent.ts, `expire`) replays one item's rows to recompute
 *   it without the expired events.
 *
 * The rules are the store's (src/store/consent.ts, Writer), applied in chain order:
 * - `accept` / `reject`: per (site, subject, item) the winning input by the one precedence rule
 *   (src/consent/last-write-wins.ts `supersedes`); a later input replaces the stored one only when
 *   it supersedes it, so of equal claims the first stays. An invalid input is a reject (seed
 *   bloomreach-tracking-consent.txt, "Invalid consent events revoke consent"); a denial has no
 *   validUntil. Duplicates are never in the log (dedup_key is unique).
 * - `record`: per subject, the fields JSON in `message`; last-write-wins by consentAt, at equal
 *   times the later row wins; a field absent from the JSON keeps its value.
 * - `link`: `subject_key` and `message` (the other subject's key) share a profile from then on; a
 *   row whose two sides are the same subject records that the subject exists (a link that created
 *   a subject without joining anything). A link the store would refuse (a visitor joining two
 *   profiles that each hold a user) is a malformed row: the store never writes one.
 * - `expire`: `message` is the seq of an invalid input of the same subject and item; from then on
 *   that input counts as absent (seed bloomreach-tracking-consent.txt: "expire the invalid consent
 *   events to restore the customer's previous consent status").
 * - `expired` (src/store/expiry.ts, EXPIRED_ACTION): a mark that a valid_until passed; it changes
 *   no state (the item still reads as denied from its valid_until): ignored.
 * - any other action: a problem (the replay would not know what it means for the state).
 */

/** The audit columns the replay reads, with the seq. */
export type ReplayRow = Pick<AuditColumns, 'site_id' | 'subject_key' | 'action' | 'item' | 'consent_at' | 'valid_until' | 'message' | 'source' | 'valid'> & { seq: number };

/** One consent_items row as the log implies it. */
export interface ImpliedItem {
  status: 'granted' | 'denied';
  consentAt: number;
  validUntil: number | null;
  source: string;
  /** The seq of the winning input (consent_items.audit_seq). */
  auditSeq: number;
}

/** The record part of a consent_records row as the log implies it (version and updated_at are not derivable). */
export interface ImpliedRecord {
  tcfString: string | null;
  /** As stored: JSON with sorted keys (gcmText). */
  gcm: string | null;
  consentType: string | null;
  geoCountry: string | null;
  consentAt: number;
  source: string;
}

export interface ReplayProblem {
  seq: number;
  reason: 'unknown_action' | 'malformed_row';
  detail: string;
}

/** gcm as stored: keys sorted, so equal flags compare equal as text. */
export function gcmText(gcm: Readonly<Record<string, 'granted' | 'denied'>> | null): string | null {
  if (gcm === null) return null;
  return JSON.stringify(Object.fromEntries(Object.entries(gcm).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/**
 * The claim a consent input makes, for the writer (src/store/consent.ts, Writer.input) and the
 * replay alike: an invalid input is a reject (seed bloomreach-tracking-consent.txt, "Invalid
 * consent events revoke consent"), and an expiry only means something for a grant.
 */
export function inputClaim(action: string, valid: boolean, consentAt: number, validUntil: number | null, source: string): ConsentClaim & { status: 'granted' | 'denied'; validUntil: number | null } {
  const status = valid && action === 'accept' ? 'granted' : 'denied';
  return { status, at: consentAt, validUntil: status === 'granted' ? validUntil : null, source };
}

type Candidate = ConsentClaim & { status: 'granted' | 'denied'; validUntil: number | null; seq: number };

interface ItemHistory {
  /** The winner among the valid inputs (they can never be expired). */
  valid: Candidate | undefined;
  /** Invalid inputs not expired: any of them may win, and each may be expired later. */
  invalid: Candidate[];
  /** Scratch flag for a comparison pass (verifyAuditState): set when the stored row was seen. */
  seen: boolean;
}

interface Node {
  parent: string;
  /** Meaningful at a root: whether the class holds a user, and its size. */
  hasUser: boolean;
  size: number;
  seen: boolean;
}

const SEP = '\u0000';
const key2 = (site: string, subject: string): string => `${site}${SEP}${subject}`;
const key3 = (site: string, subject: string, item: string): string => `${site}${SEP}${subject}${SEP}${item}`;

function earliestWinner(h: ItemHistory): Candidate | undefined {
  const all = h.valid === undefined ? [...h.invalid] : [h.valid, ...h.invalid];
  all.sort((a, b) => a.seq - b.seq);
  let best: Candidate | undefined;
  for (const c of all) if (best === undefined || supersedes(c, best)) best = c;
  return best;
}

const isUser = (subjectKey: string): boolean => subjectKey.startsWith('user:');

/**
 * The replay as a reducer, for streaming: `add` each row in chain order, then read the state.
 * Memory: one entry per item and per subject of the implied state (plus the invalid inputs not
 * expired), never the log itself.
 */
export class AuditReplay {
  private readonly items = new Map<string, ItemHistory>();
  private readonly records = new Map<string, ImpliedRecord & { seen: boolean }>();
  private readonly nodes = new Map<string, Node>();
  /** seq of each invalid input → its item key (what an `expire` row may name). */
  private readonly invalidSeqs = new Map<number, string>();

  /** Applies one row; a problem when the row cannot be replayed (the state then ignores it). */
  add(r: ReplayRow): ReplayProblem | undefined {
    const bad = (detail: string): ReplayProblem => ({ seq: r.seq, reason: 'malformed_row', detail });
    switch (r.action) {
      case 'accept':
      case 'reject': {
        if (r.item === null || r.consent_at === null) return bad('an input without item or consent_at');
        const c: Candidate = { ...inputClaim(r.action, r.valid === 1, r.consent_at, r.valid_until, r.source), seq: r.seq };
        const k = key3(r.site_id, r.subject_key, r.item);
        const h = this.items.get(k) ?? { valid: undefined, invalid: [], seen: false };
        if (r.valid === 1) {
          if (h.valid === undefined || supersedes(c, h.valid)) h.valid = c;
        } else {
          h.invalid.push(c);
          this.invalidSeqs.set(r.seq, k);
        }
        // An invalid input that no longer beats the valid winner can never win again (only invalid
        // inputs are ever expired): forget it, so memory follows the state, not the log.
        const v = h.valid;
        if (v !== undefined) h.invalid = h.invalid.filter((x) => supersedes(x, v) || (!supersedes(v, x) && x.seq < v.seq));
        this.items.set(k, h);
        this.subject(r.site_id, r.subject_key);
        return undefined;
      }
      case 'record':
        return this.applyRecord(r);
      case 'link': {
        if (r.message === null || !/^(user|visitor):/.test(r.message)) return bad('a link without the other subject');
        return this.link(r.site_id, r.subject_key, r.message) ? undefined : bad('a link the store refuses (a visitor between two profiles that each hold a user)');
      }
      case 'expire': {
        const target = r.message === null || !/^[0-9]{1,16}$/.test(r.message) ? undefined : Number(r.message);
        if (target === undefined || r.item === null) return bad('an expiry without the seq of an event');
        const k = this.invalidSeqs.get(target);
        if (k === undefined || k !== key3(r.site_id, r.subject_key, r.item)) {
          return bad(`expires seq ${target}, which is not an earlier invalid input of this subject and item`);
        }
        this.invalidSeqs.delete(target);
        const h = this.items.get(k);
        if (h !== undefined) h.invalid = h.invalid.filter((x) => x.seq !== target);
        return undefined;
      }
      case 'expired':
        return undefined;
      default:
        return { seq: r.seq, reason: 'unknown_action', detail: `action "${r.action}"` };
    }
  }

  private applyRecord(r: ReplayRow): ReplayProblem | undefined {
    const bad = (detail: string): ReplayProblem => ({ seq: r.seq, reason: 'malformed_row', detail });
    if (r.consent_at === null || r.message === null) return bad('a record without consent_at or fields');
    let fields: unknown;
    try {
      fields = JSON.parse(r.message);
    } catch {
      return bad('record fields are not JSON');
    }
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) return bad('record fields are not an object');
    const f = fields as Record<string, unknown>;
    const text = (name: string): string | null | undefined | false => {
      if (!Object.hasOwn(f, name)) return undefined;
      const v = f[name];
      return v === null ? null : typeof v === 'string' ? storableText(v) : false;
    };
    const tcf = text('tcfString');
    const type = text('consentType');
    const geo = text('geoCountry');
    let gcm: string | null | undefined;
    if (!Object.hasOwn(f, 'gcm')) gcm = undefined;
    else if (f.gcm === null) gcm = null;
    else if (typeof f.gcm === 'object' && !Array.isArray(f.gcm)) gcm = gcmText(f.gcm as Record<string, 'granted' | 'denied'>);
    else return bad('record gcm is not an object');
    if (tcf === false || type === false || geo === false) return bad('a record field is not text');
    this.subject(r.site_id, r.subject_key);
    const k = key2(r.site_id, r.subject_key);
    const old = this.records.get(k);
    // Writer.patch: applied when there is no stored time or the patch is not older (equal: later wins).
    if (old !== undefined && r.consent_at < old.consentAt) return undefined;
    this.records.set(k, {
      tcfString: tcf === undefined ? (old?.tcfString ?? null) : tcf,
      gcm: gcm === undefined ? (old?.gcm ?? null) : gcm,
      consentType: type === undefined ? (old?.consentType ?? null) : type,
      geoCountry: geo === undefined ? (old?.geoCountry ?? null) : geo,
      consentAt: r.consent_at,
      source: r.source,
      seen: false,
    });
    return undefined;
  }

  private subject(site: string, subjectKey: string): string {
    const k = key2(site, subjectKey);
    if (!this.nodes.has(k)) this.nodes.set(k, { parent: k, hasUser: isUser(subjectKey), size: 1, seen: false });
    return this.root(k);
  }

  private root(k: string): string {
    let r = k;
    for (let n = this.nodes.get(r); n !== undefined && n.parent !== r; n = this.nodes.get(r)) r = n.parent;
    // Path compression: later finds are near constant.
    for (let c = k; c !== r; ) {
      const n = this.nodes.get(c)!;
      c = n.parent;
      n.parent = r;
    }
    return r;
  }

  /** Writer.link's rule: false when the store would have refused the link. */
  private link(site: string, a: string, b: string): boolean {
    const ra = this.subject(site, a);
    const rb = this.subject(site, b);
    if (ra === rb) return true;
    const na = this.nodes.get(ra)!;
    const nb = this.nodes.get(rb)!;
    if ((!isUser(a) || !isUser(b)) && na.hasUser && nb.hasUser) return false;
    const [big, small] = na.size >= nb.size ? [na, nb] : [nb, na];
    small.parent = big === na ? ra : rb;
    big.size += small.size;
    big.hasUser ||= small.hasUser;
    return true;
  }

  /** The implied consent_items row, or undefined when the log implies none. */
  item(site: string, subjectKey: string, item: string): ImpliedItem | undefined {
    const h = this.items.get(key3(site, subjectKey, item));
    return h === undefined ? undefined : implied(h);
  }

  /** The implied record part of a subject, or undefined when no record row decided it. */
  record(site: string, subjectKey: string): ImpliedRecord | undefined {
    const r = this.records.get(key2(site, subjectKey));
    if (r === undefined) return undefined;
    const { seen: _seen, ...rest } = r;
    return rest;
  }

  /** The profile class of a subject (an opaque id, equal for subjects sharing a profile), or undefined for a subject the log never names. */
  profileOf(site: string, subjectKey: string): string | undefined {
    const k = key2(site, subjectKey);
    return this.nodes.has(k) ? this.root(k) : undefined;
  }

  /** Subjects in the profile class `profileOf` returned. */
  profileSize(profile: string): number {
    return this.nodes.get(profile)?.size ?? 0;
  }

  // The comparison pass (verifyAuditState) marks what the stored tables hold, then asks what the
  // log implies that the tables lack: seen flags instead of a second set of keys.

  markItem(site: string, subjectKey: string, item: string): void {
    const h = this.items.get(key3(site, subjectKey, item));
    if (h !== undefined) h.seen = true;
  }

  /** The first implied item no stored row was marked for. */
  unseenItem(): { siteId: string; subjectKey: string; item: string; state: ImpliedItem } | undefined {
    for (const [k, h] of this.items) {
      if (h.seen) continue;
      const state = implied(h);
      if (state === undefined) continue;
      const [siteId, subjectKey, item] = k.split(SEP) as [string, string, string];
      return { siteId, subjectKey, item, state };
    }
    return undefined;
  }

  markRecord(site: string, subjectKey: string): void {
    const r = this.records.get(key2(site, subjectKey));
    if (r !== undefined) r.seen = true;
  }

  unseenRecord(): { siteId: string; subjectKey: string; state: ImpliedRecord } | undefined {
    for (const [k, r] of this.records) {
      if (r.seen) continue;
      const [siteId, subjectKey] = k.split(SEP) as [string, string];
      const { seen: _seen, ...state } = r;
      return { siteId, subjectKey, state };
    }
    return undefined;
  }

  /** Marks a profile class as matched by a stored profile; false when it already was (two stored profiles for one class). */
  markProfile(profile: string): boolean {
    const n = this.nodes.get(profile);
    if (n === undefined || n.seen) return false;
    n.seen = true;
    return true;
  }

  /** A subject whose class no stored profile matched. */
  unseenSubject(): { siteId: string; subjectKey: string } | undefined {
    for (const k of this.nodes.keys()) {
      if (this.nodes.get(this.root(k))!.seen) continue;
      const [siteId, subjectKey] = k.split(SEP) as [string, string];
      return { siteId, subjectKey };
    }
    return undefined;
  }

  /** Every subject of the class, sorted (for a report; bounded by `max`). */
  members(profile: string, max = 10): string[] {
    const out: string[] = [];
    for (const k of this.nodes.keys()) if (this.root(k) === profile) out.push(k.slice(k.indexOf(SEP) + 1));
    return out.sort().slice(0, max);
  }
}

function implied(h: ItemHistory): ImpliedItem | undefined {
  const w = earliestWinner(h);
  return w === undefined ? undefined : { status: w.status, consentAt: w.at, validUntil: w.validUntil, source: w.source, auditSeq: w.seq };
}

/** The state `rows` (in chain order) imply, and the rows that could not be replayed. */
export function replayAudit(rows: Iterable<ReplayRow>): { state: AuditReplay; problems: ReplayProblem[] } {
  const state = new AuditReplay();
  const problems: ReplayProblem[] = [];
  for (const r of rows) {
    const p = state.add(r);
    if (p !== undefined) problems.push(p);
  }
  return { state, problems };
}
