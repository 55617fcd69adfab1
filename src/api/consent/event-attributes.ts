import { ValidationError } from '../../errors.ts';
import { auditAttributesJson, MAX_AUDIT_ATTRIBUTES_BYTES } from '../../store/audit.ts';

/**
 * The evidence of a Bloomreach consent event (seed bloomreach-tracking-consent.txt): "If your legal
 * basis for processing customer data is consent, you need to be able to prove it", and "You can
 * also track any additional custom attributes you need". What the event said is kept in the audit
 * row's `attributes` (ConsentInput.attributes, hashed into the chain), beside the state the store
 * derives from it.
 *
 * Shape of the attributes (object keys sorted by the store):
 * - the seed's attributes as sent: action, category, timestamp, valid_until, email, identification,
 *   identification_type, message, source (the route's default when absent: the seed says it is
 *   generated);
 * - `imported_timestamp`: ours, unix seconds of when Tagwarden received the event (the seed: set
 *   automatically "for auditing purposes"); a value the sender gave is kept as
 *   `imported_timestamp_sent`, never in its place;
 * - `customer_ids`: the ids the event named, as sent;
 * - `custom`: every other property, as sent, under its own key so a custom name can never pass for
 *   one of the seed's.
 *
 * Untrusted and bounded: a bound crossed is a problem of the event (it is then invalid and revokes,
 * the seed's rule for an event the platform cannot take as it is), never a silent cut.
 */

/** Limits of the evidence one event may carry (custom attributes and customer_ids alike). */
export const EVENT_ATTRIBUTE_LIMITS = {
  /** Custom attributes per event, and keys of any object inside one. */
  maxKeys: 64,
  maxKeyLength: 128,
  /** Characters of any string inside a custom attribute. */
  maxString: 2048,
  /** Items of an array inside a custom attribute. */
  maxArray: 64,
  /** Objects and arrays nested inside one another, the attribute's own value counting as 1. */
  maxDepth: 4,
} as const;

/** The attributes the seed's table names (imported_timestamp apart: it is ours). */
export const SEED_EVENT_ATTRIBUTES = ['action', 'category', 'timestamp', 'valid_until', 'email', 'identification', 'identification_type', 'message', 'source'] as const;

/** The seed's "Source values" table: the only sources a consent event may name. */
export const SEED_SOURCES = ['crm', 'import', 'list_unsubscribe', 'page', 'public_api', 'private_api', 'scenario'] as const;

const SEED_KEYS: ReadonlySet<string> = new Set<string>([...SEED_EVENT_ATTRIBUTES, 'imported_timestamp']);

/** Most problems reported per event: the first few say what to fix, a hostile body gets no longer answer. */
const MAX_PROBLEMS = 5;

/**
 * The problems of one value against EVENT_ATTRIBUTE_LIMITS, each naming its path. Stops descending
 * past the depth limit (so a hostile nesting costs nothing) and after MAX_PROBLEMS.
 */
export function attributeProblems(value: unknown, path: string, problems: string[] = [], depth = 1): string[] {
  const L = EVENT_ATTRIBUTE_LIMITS;
  if (problems.length >= MAX_PROBLEMS) return problems;
  if (value === null || typeof value === 'boolean') return problems;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) problems.push(`${path}: a finite number`);
    return problems;
  }
  if (typeof value === 'string') {
    if (value.length > L.maxString) problems.push(`${path}: a string of at most ${L.maxString} characters`);
    return problems;
  }
  if (typeof value !== 'object') {
    problems.push(`${path}: a JSON value`);
    return problems;
  }
  if (depth > L.maxDepth) {
    problems.push(`${path}: nested at most ${L.maxDepth} levels deep`);
    return problems;
  }
  if (Array.isArray(value)) {
    if (value.length > L.maxArray) {
      problems.push(`${path}: at most ${L.maxArray} items`);
      return problems;
    }
    value.forEach((v, i) => attributeProblems(v, `${path}[${i}]`, problems, depth + 1));
    return problems;
  }
  const keys = Object.keys(value);
  if (keys.length > L.maxKeys) {
    problems.push(`${path}: at most ${L.maxKeys} keys`);
    return problems;
  }
  for (const k of keys) {
    keyProblem(k, path, problems);
    attributeProblems((value as Record<string, unknown>)[k], `${path}.${k.slice(0, 32)}`, problems, depth + 1);
  }
  return problems;
}

function keyProblem(k: string, path: string, problems: string[]): void {
  if (problems.length >= MAX_PROBLEMS) return;
  if (k.length === 0 || k.length > EVENT_ATTRIBUTE_LIMITS.maxKeyLength) problems.push(`${path}: keys of 1-${EVENT_ATTRIBUTE_LIMITS.maxKeyLength} characters`);
  // JSON.parse makes `__proto__` an own key, but copying it into a plain object (as the store's
  // canonical JSON does) sets the prototype instead: it would vanish from the evidence unseen.
  else if (k === '__proto__') problems.push(`${path}: the key __proto__ cannot be kept`);
}

/** A seed attribute kept as sent when it is a scalar the schema could have accepted (else the schema reports it). */
function keptScalar(v: unknown, maxString: number): boolean {
  return v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length <= maxString);
}

export interface EvidenceOptions {
  /** The event's `customer_ids`, as sent (undefined when it named none). */
  customerIds?: unknown;
  /** The route's source, kept when the event names none. */
  source: string;
  /** When Tagwarden received the event (ms). */
  now: number;
}

/**
 * The audit attributes of one event's attributes (`properties`, or the flat body without its ids),
 * and the problems that make the event invalid. Never throws on the event's content.
 */
export function eventEvidence(attrs: Readonly<Record<string, unknown>>, o: EvidenceOptions): { attributes: Record<string, unknown>; problems: string[] } {
  const problems: string[] = [];
  const seed: Record<string, unknown> = {};
  for (const k of SEED_EVENT_ATTRIBUTES) {
    const v = attrs[k];
    // Beyond these sizes the schema refuses the value anyway (message 4096, the rest far less).
    if (v !== undefined && keptScalar(v, k === 'message' ? 4096 : EVENT_ATTRIBUTE_LIMITS.maxString)) seed[k] = v;
  }
  if (seed.source === undefined || seed.source === null) seed.source = o.source;
  seed.imported_timestamp = Math.floor(o.now / 1000);
  const sentImported = attrs.imported_timestamp;
  if (sentImported !== undefined && keptScalar(sentImported, 64)) seed.imported_timestamp_sent = sentImported;
  else if (sentImported !== undefined) problems.push('imported_timestamp: a number or a string of at most 64 characters');

  let customerIds: unknown;
  if (o.customerIds !== undefined) {
    const found = attributeProblems(o.customerIds, 'customer_ids');
    if (found.length === 0) customerIds = o.customerIds;
    else problems.push(...found);
  }

  let custom: Record<string, unknown> | undefined;
  const customKeys = Object.keys(attrs).filter((k) => !SEED_KEYS.has(k) && attrs[k] !== undefined);
  if (customKeys.length > EVENT_ATTRIBUTE_LIMITS.maxKeys) {
    problems.push(`properties: at most ${EVENT_ATTRIBUTE_LIMITS.maxKeys} custom attributes`);
  } else if (customKeys.length > 0) {
    const found: string[] = [];
    for (const k of customKeys) {
      keyProblem(k, 'properties', found);
      attributeProblems(attrs[k], `properties.${k.slice(0, 32)}`, found);
    }
    if (found.length === 0) {
      custom = {};
      for (const k of customKeys) custom[k] = attrs[k];
    } else problems.push(...found);
  }

  // The store refuses more than MAX_AUDIT_ATTRIBUTES_BYTES for the whole request (400). One event's
  // excess is its own problem instead: what fits of the seed's attributes is kept, and the event is
  // invalid, so it revokes rather than standing without its evidence.
  const full: Record<string, unknown> = { ...seed };
  if (customerIds !== undefined) full.customer_ids = customerIds;
  if (custom !== undefined) full.custom = custom;
  if (fits(full)) return { attributes: full, problems: problems.slice(0, MAX_PROBLEMS) };
  problems.push(`properties: at most ${MAX_AUDIT_ATTRIBUTES_BYTES} bytes of evidence per event (custom attributes and customer_ids not kept)`);
  const attributes = fits(seed) ? seed : { source: o.source, imported_timestamp: seed.imported_timestamp };
  return { attributes, problems: problems.slice(0, MAX_PROBLEMS + 1) };
}

function fits(attrs: Record<string, unknown>): boolean {
  try {
    auditAttributesJson(attrs);
    return true;
  } catch (e) {
    if (e instanceof ValidationError) return false;
    throw e;
  }
}
