/**
 * Keys whose values are personal data in the payloads Tagwarden renders (Segment events, Meta
 * `user_data`, GA4 ids). Used to scrub what a log line shows, e.g. a dry-run request.
 * Matched case-insensitively on the key name at any depth.
 */
const PII_KEYS = new Set(
  [
    'ip', 'userAgent', 'anonymousId', 'userId', 'previousId', 'traits', 'email', 'phone', 'name', 'firstName', 'lastName',
    'address', 'birthday', 'user_data', 'client_id', 'user_id', 'client_ip_address', 'client_user_agent', 'em', 'ph',
    'fn', 'ln', 'db', 'ge', 'ct', 'st', 'zp', 'external_id', 'fbp', 'fbc', 'cookie', 'url', 'referrer', 'search',
    'page_location', 'page_referrer', 'event_source_url',
  ].map((k) => k.toLowerCase()),
);

const MASK = '[pii]';

/** A copy of a JSON value with every PII key's value replaced. Bounded by the value's own size. */
export function scrubPii(value: unknown, depth = 0): unknown {
  if (depth > 64) return MASK;
  if (Array.isArray(value)) return value.map((v) => scrubPii(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = PII_KEYS.has(k.toLowerCase()) ? MASK : scrubPii(v, depth + 1);
    return out;
  }
  return value;
}
