/**
 * Shared types of the consent store (src/store/consent.ts), its webhooks (src/store/webhooks.ts)
 * and the consent API (src/api/consent/*). Times are integer milliseconds since the epoch.
 */
import type { Queryable } from './db.ts';

export type SubjectType = 'visitor' | 'user';

export interface SubjectRef {
  type: SubjectType;
  id: string;
}

/** `visitor:<id>` or `user:<id>`: the key of a subject in every table. */
export function subjectKey(s: SubjectRef): string {
  return `${s.type}:${s.id}`;
}

/** The subject a key (`subjectKey`) names: `user:<id>` is a user, anything else a visitor. */
export function parseSubjectKey(key: string): SubjectRef {
  const at = key.indexOf(':');
  const type = key.slice(0, at);
  return { type: type === 'user' ? 'user' : 'visitor', id: key.slice(at + 1) };
}

/**
 * One consent input about one item (a category id, or `ref:<reference>` for consent to an
 * object). An invalid input is stored (audit) and revokes the item: it is applied as a reject
 * (seed bloomreach-tracking-consent.txt, "Invalid consent events revoke consent").
 */
export interface ConsentInput {
  siteId: string;
  subject: SubjectRef;
  /** Other ids the same input carried (a user id with a visitor id): linked to `subject`. */
  links?: readonly SubjectRef[];
  action: 'accept' | 'reject';
  item: string;
  /** The consent's own time (Bloomreach `timestamp`: valid from). Last-write-wins compares it. */
  consentAt: number;
  /** Null: unlimited. A passed `validUntil` reads as denied. */
  validUntil: number | null;
  /** e.g. `private_api`, `import`, `push`, `crm`, `page` (Bloomreach source values). */
  source: string;
  message?: string;
  identification?: string;
  identificationType?: string;
  valid: boolean;
  invalidReason?: string;
  /** SHA-256 of the raw payload the input came from (hex). */
  payloadHash: string;
  /** Id of the API key that sent it (never the key). */
  apiKeyId?: string;
  /** Inputs with the same key are applied once (re-imports change nothing); default derived from the fields. */
  dedupKey?: string;
  /**
   * Evidence kept in the audit row beside the state (hashed into the chain, never part of the
   * state): Bloomreach's email and custom attributes, SecurePrivacy's Metadata, URI, Reference,
   * ConsentType and fingerprint. Bounded by auditAttributesJson (src/store/audit.ts).
   */
  attributes?: Readonly<Record<string, unknown>>;
}

/** What a push sets besides items: last-write-wins by `consentAt` as well. */
export interface RecordPatch {
  siteId: string;
  subject: SubjectRef;
  consentAt: number;
  tcfString?: string | null;
  gcm?: Readonly<Record<string, 'granted' | 'denied'>> | null;
  consentType?: string | null;
  geoCountry?: string | null;
  source: string;
  /** SHA-256 of the raw payload (audit); defaults to one of the patch itself. */
  payloadHash?: string;
  apiKeyId?: string;
  /** Evidence kept in the audit row, as ConsentInput.attributes. */
  attributes?: Readonly<Record<string, unknown>>;
}

export interface ItemState {
  item: string;
  status: 'granted' | 'denied';
  consentAt: number;
  validUntil: number | null;
  source: string;
  /** True when `validUntil` has passed: the item reads as denied. */
  expired: boolean;
}

/** A subject's consent, merged over the subjects linked to it (last-write-wins per item). */
export interface SubjectConsent {
  siteId: string;
  subject: SubjectRef;
  /** Subjects sharing the profile (this one included). */
  linked: SubjectRef[];
  /** Highest version among the linked records: increases with every change. */
  version: number;
  items: Record<string, ItemState>;
  tcfString: string | null;
  gcm: Record<string, 'granted' | 'denied'> | null;
  consentType: string | null;
  geoCountry: string | null;
  /** Latest consent time among the items and record. */
  consentAt: number | null;
  updatedAt: number;
}

/** Per input: whether it was stored, valid, and whether it changed the state. */
export interface InputOutcome {
  auditSeq: number | null;
  valid: boolean;
  invalidReason?: string;
  /** False when an input with a newer consentAt already decided the item (kept in the audit log only). */
  applied: boolean;
  /** True when an identical input (same dedupKey) was already stored: nothing changed. */
  duplicate: boolean;
}

/** A change of one subject's consent, handed to listeners inside the writing transaction. */
export interface ConsentChange {
  siteId: string;
  subject: SubjectRef;
  /** The subject's version after the change. */
  version: number;
  /** Items whose state changed, with their new state. */
  items: ItemState[];
  /** True when the record part (TCF, gcm, type) changed. */
  recordChanged: boolean;
  at: number;
}

/** Called inside the transaction that wrote a change (webhook deliveries are enqueued here). */
export type ChangeHook = (tx: Queryable, change: ConsentChange) => Promise<void>;

/** The same for all the changes of one write at once, in order. */
export type ChangesHook = (tx: Queryable, changes: readonly ConsentChange[]) => Promise<void>;
