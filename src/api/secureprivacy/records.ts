import { createHash, randomUUID } from 'node:crypto';
import { ConfigError } from '../../errors.ts';
import type { Clock } from '../../lib/clock.ts';
import { clientIdFor, type ClientIdKey } from '../../store/client-id.ts';
import type { Db } from '../../store/db.ts';
import { parseSubjectKey, subjectKey, type ConsentInput, type InputOutcome, type SubjectRef } from '../../store/types.ts';
import { clientIdSubject, currentRefRecord, profileMembers, rememberClientId, type RefRecord } from '../../store/universal-consent.ts';
import { payloadHash } from '../consent/inputs.ts';
import type { ConsentGiven } from './fields.ts';
import type { Fingerprint } from './fingerprint.ts';

/**
 * SecurePrivacy's universal consent records (seed secureprivacy-universal-consent-api.txt) on the
 * consent store, without a table of their own:
 * - a record is the item `ref:<Reference>` of a subject; All and Partial grant it, None denies it;
 * - what the seed keeps per reference (ConsentGiven as given, ConsentType, Metadata, URI,
 *   CustomUserId, ClientId, the fingerprint) is the evidence of its audit row, so two references
 *   of one person keep two ConsentTypes; the current record is the item's winning row;
 * - the subject: `user:<CustomUserId>`, whose ClientId (derived, clientIdFor) is remembered in
 *   `client_ids` (migration 7) so the ClientId routes find it; or, without a CustomUserId,
 *   `visitor:<ClientId>` with a new random ClientId (in SecurePrivacy the ClientId is the
 *   browser's id);
 * - ConsentGiven also sets the site categories, by the config's mapping, unless told not to.
 */

/** The audit `source` of every input these routes write (the query selects on it). */
export const SOURCE = 'secureprivacy';

export type Grants = Readonly<Record<ConsentGiven, readonly string[]>>;

export interface RecordsOptions {
  siteId: string;
  db: Db;
  store: { apply(inputs: ConsentInput[]): Promise<InputOutcome[]> };
  /** The site's categories. */
  categories: readonly string[];
  /** Categories each ConsentGiven grants (the others it denies). */
  grants: Grants;
  clock: Clock;
  /** The store's ClientId key (src/store/client-id.ts), loaded once. */
  clientIdKey: () => Promise<ClientIdKey>;
}

/**
 * The config's mapping (`api.secureprivacy.consentGiven`) made concrete. A name the site does not
 * define is a config error: a misspelt category would otherwise be silently denied.
 */
export function resolveGrants(categories: readonly string[], mapping: { All?: readonly string[] | undefined; Partial?: readonly string[] | undefined; None: readonly string[] }): Grants {
  const known = new Set(categories);
  const check = (name: ConsentGiven, list: readonly string[]): readonly string[] => {
    const unknown = list.filter((c) => !known.has(c));
    if (unknown.length > 0) throw new ConfigError(`api.secureprivacy.consentGiven.${name}: ${unknown.join(', ')} is not a site category (site.categories)`);
    return [...new Set(list)];
  };
  return {
    All: mapping.All === undefined ? [...categories] : check('All', mapping.All),
    // Partial, by default: what a site cannot work without, where the site names such categories.
    Partial: mapping.Partial === undefined ? categories.filter((c) => c === 'necessary' || c === 'functional') : check('Partial', mapping.Partial),
    None: check('None', mapping.None),
  };
}

/** What a record's audit row keeps besides its state (ConsentInput.attributes). */
export interface Evidence extends Fingerprint {
  Reference: string;
  ConsentGiven: ConsentGiven;
  ClientId: string;
  ConsentType?: string;
  Metadata?: string;
  URI?: string;
  CustomUserId?: string;
  IntegrationId?: string;
}

export function refItem(reference: string): string {
  return `ref:${reference}`;
}

/** A ClientId's subject and its profile's subjects. */
export interface Client {
  subjectKey: string;
  members: string[];
}

/** The subject a ClientId names (remembered, else `visitor:<ClientId>`), or undefined when none holds consent. */
export async function findClient(o: RecordsOptions, clientId: string): Promise<Client | undefined> {
  const subjectKey = (await clientIdSubject(o.db, o.siteId, clientId)) ?? `visitor:${clientId}`;
  const members = await profileMembers(o.db, o.siteId, subjectKey);
  return members === undefined ? undefined : { subjectKey, members };
}

/** A create's ClientId and subject: derived from the CustomUserId, or new. */
export function newClient(key: ClientIdKey, siteId: string, customUserId: string | undefined): { clientId: string; subject: SubjectRef } {
  if (customUserId === undefined) {
    const clientId = randomUUID();
    return { clientId, subject: { type: 'visitor', id: clientId } };
  }
  return { clientId: clientIdFor(key, siteId, customUserId), subject: { type: 'user', id: customUserId } };
}

/** The current record of `reference` for a subject's profile (a create names the subject, not a ClientId). */
export async function currentRecordOf(o: RecordsOptions, subject: SubjectRef, reference: string): Promise<RefRecord | undefined> {
  return currentRecord(o, await profileMembers(o.db, o.siteId, subjectKey(subject)), reference);
}

export function currentRecord(o: RecordsOptions, members: readonly string[] | undefined, reference?: string): Promise<RefRecord | undefined> {
  return members === undefined ? Promise.resolve(undefined) : currentRefRecord(o.db, o.siteId, members, reference === undefined ? undefined : refItem(reference));
}

export interface RecordWrite {
  subject: SubjectRef;
  evidence: Evidence;
  /** Also set the site categories from ConsentGiven. */
  mapCategories: boolean;
  apiKeyId?: string | undefined;
  /** The request body, for the audit row's payload hash. */
  raw: unknown;
}

/**
 * Records one consent to a reference. Its time is the server's, and always after the record it
 * replaces (by 1 ms at most when both fall in the same millisecond): the seed's requests carry no
 * time of their own, and an update must win last-write-wins over what it updates.
 */
export async function writeRecord(o: RecordsOptions, w: RecordWrite, current: RefRecord | undefined): Promise<{ at: number; created: number }> {
  const at = Math.max(o.clock.now(), current === undefined ? 0 : current.consentAt + 1);
  const hash = payloadHash(w.raw ?? null);
  const { evidence } = w;
  const attributes: Record<string, unknown> = Object.fromEntries(Object.entries(evidence).filter(([, v]) => v !== undefined));
  const inputs: ConsentInput[] = [];
  const add = (item: string, granted: boolean): void => {
    const input: ConsentInput = {
      siteId: o.siteId,
      subject: w.subject,
      action: granted ? 'accept' : 'reject',
      item,
      consentAt: at,
      validUntil: null,
      source: SOURCE,
      valid: true,
      payloadHash: hash,
      // Two references recorded in the same millisecond set the same category: both are kept. So
      // are two requests for one reference dated the same millisecond (concurrent requests read the
      // same current record on PostgreSQL): each answered 200 keeps its own evidence (ConsentType,
      // Metadata, URI, fingerprint) in its own audit row, never taken for the other's duplicate.
      dedupKey: JSON.stringify(['secureprivacy', w.subject.type, w.subject.id, item, at, evidence.Reference, evidence.ConsentGiven, attributes, hash]),
      attributes,
    };
    if (w.apiKeyId !== undefined) input.apiKeyId = w.apiKeyId;
    inputs.push(input);
  };
  add(refItem(evidence.Reference), evidence.ConsentGiven !== 'None');
  if (w.mapCategories) {
    const granted = new Set(o.grants[evidence.ConsentGiven]);
    for (const c of o.categories) add(c, granted.has(c));
  }
  // Before the write: a mapping without a record is harmless (the routes answer 404 for it), a
  // record its ClientId cannot find is not.
  if (w.subject.type === 'user') await rememberClientId(o.db, o.siteId, evidence.ClientId, subjectKey(w.subject), at);
  await o.store.apply(inputs);
  return { at, created: current?.created ?? at };
}

/** The subject an update of a ClientId's reference goes to: the one holding the record, else the ClientId's. */
export function subjectFor(client: Client, current: RefRecord | undefined): SubjectRef {
  return parseSubjectKey(current?.subjectKey ?? client.subjectKey);
}

// ---- reading a record back, as the seed's answers name its parts ----

export function attr(rec: RefRecord, name: string): string | null {
  const v = rec.attributes?.[name];
  return typeof v === 'string' ? v : null;
}

/**
 * ConsentGiven as given (All, Partial or None). A denied or expired item is None whatever was
 * given; an item decided by another input (a /api/v1 push, an event) reads All when granted.
 */
export function consentGivenOf(rec: RefRecord, now: number): ConsentGiven {
  const granted = rec.status === 'granted' && (rec.validUntil === null || rec.validUntil > now);
  if (!granted) return 'None';
  return attr(rec, 'ConsentGiven') === 'Partial' ? 'Partial' : 'All';
}

export function customUserIdOf(rec: RefRecord): string | undefined {
  return attr(rec, 'CustomUserId') ?? (rec.subjectKey.startsWith('user:') ? rec.subjectKey.slice('user:'.length) : undefined);
}

export function clientIdOf(key: ClientIdKey, siteId: string, rec: RefRecord): string {
  const stored = attr(rec, 'ClientId');
  if (stored !== null) return stored;
  const cui = customUserIdOf(rec);
  return cui !== undefined ? clientIdFor(key, siteId, cui) : rec.subjectKey.slice(rec.subjectKey.indexOf(':') + 1);
}

export function referenceOf(rec: RefRecord): string {
  return rec.item.slice('ref:'.length);
}

/** A record's Id: stable per (site, ClientId, Reference), 24 hex digits like SecurePrivacy's ids. */
export function recordId(siteId: string, clientId: string, reference: string): string {
  return createHash('sha256').update(JSON.stringify(['universal-consent', siteId, clientId, reference])).digest('hex').slice(0, 24);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The seed's "full universal user consent record" (GET /api/universalconsent/:clientId). */
export function recordAnswer(key: ClientIdKey, siteId: string, rec: RefRecord, now: number): Record<string, unknown> {
  const clientId = clientIdOf(key, siteId, rec);
  const reference = referenceOf(rec);
  const cui = customUserIdOf(rec);
  return {
    Id: recordId(siteId, clientId, reference),
    Created: iso(rec.created),
    LastUpdated: iso(rec.consentAt),
    URI: attr(rec, 'URI'),
    ConsentGiven: consentGivenOf(rec, now),
    ConsentType: attr(rec, 'ConsentType'),
    Metadata: attr(rec, 'Metadata'),
    Reference: reference,
    ...(cui === undefined ? {} : { CustomUserId: cui }),
    ClientId: clientId,
  };
}

/** One consent of the seed's query answer: ConsentGiven as a boolean, the fingerprint nested. */
export function queryAnswer(key: ClientIdKey, siteId: string, rec: RefRecord, now: number): Record<string, unknown> {
  const clientId = clientIdOf(key, siteId, rec);
  const reference = referenceOf(rec);
  return {
    Id: recordId(siteId, clientId, reference),
    Created: iso(rec.created),
    LastUpdated: iso(rec.consentAt),
    ConsentGiven: consentGivenOf(rec, now) !== 'None',
    URI: attr(rec, 'URI'),
    ConsentType: attr(rec, 'ConsentType'),
    Metadata: attr(rec, 'Metadata'),
    Reference: reference,
    ClientId: clientId,
    Fingerprint: {
      CustomUserId: customUserIdOf(rec) ?? null,
      IP: attr(rec, 'IP'),
      ProxifiedIP: attr(rec, 'ProxifiedIP'),
      UserAgent: attr(rec, 'UserAgent'),
      City: attr(rec, 'City'),
      State: attr(rec, 'State'),
      Country: attr(rec, 'Country'),
    },
  };
}
