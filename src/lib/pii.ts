import { isIP } from 'node:net';
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
    'page_location', 'page_referrer', 'event_source_url', 'userData',
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

/**
 * Personal data in free text, such as a vendor's error answer that echoes the payload it refused
 * (Meta's and Google's error messages quote the offending value): each match becomes `[pii]`.
 * - e-mail addresses (every character RFC 5322 allows in a local part; bounded quantifiers, so the
 *   scan stays linear);
 * - IP addresses (checked with node:net, so a time like `10:00:00` stays) and hex digests of 32
 *   characters and more (MD5, SHA-1, SHA-256: hashed identifiers such as Meta's `em` are still
 *   personal data), found token by token between delimiters;
 * - dotted IPv4 addresses inside a token (`ip:203.0.113.9`);
 * - runs of 9 or more digits, alone or with the separators phone numbers are written with
 *   (`+33 6 12 34 56 78`, `(650) 555-1212`): phone numbers, and ids such as `_fbp` cookies and GA
 *   client ids; Meta's 7-digit error subcodes and ordinary numbers stay readable.
 * When the whole text is JSON, PII keys (scrubPii) are masked first, whatever their value.
 * Over-masking a diagnostic is the price of never logging a customer's data.
 */
export function scrubPiiText(text: string): string {
  let out = text;
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      out = JSON.stringify(scrubPii(JSON.parse(text) as unknown));
    } catch {
      // Not JSON (or cut short): the token and pattern rules still apply.
    }
  }
  return out
    .replace(EMAIL, MASK)
    .split(DELIMITERS)
    .map((part, i) => (i % 2 === 1 ? part : scrubToken(part)))
    .join('')
    .replace(IPV4, MASK)
    .replace(DIGIT_RUN, (m) => (m.replace(/\D/g, '').length >= 9 ? MASK : m));
}

/** What separates tokens in JSON, URLs and prose; captured, so split() keeps them in place. */
const DELIMITERS = /([\s"'`<>()[\]{},;|\\=&?/]+)/;
/** RFC 5322 dot-atom local part (https://www.rfc-editor.org/rfc/rfc5322#section-3.2.3), DNS labels, a letter TLD. */
const EMAIL = /[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63}/g;
const HEX_DIGEST = /^[0-9a-fA-F]{32,}$/;
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}\b/g;
/** A digit, then digits and phone separators, ending in a digit; its digits are counted after. */
const DIGIT_RUN = /\+?\d[\d ().-]*\d/g;

function scrubToken(token: string): string {
  if (token === '') return token;
  if (isIP(token) !== 0) return MASK; // before trimming: an IPv6 address may end in `::`
  // Punctuation after a value ("from 203.0.113.9.", "em: <digest>:") is kept, not masked.
  let end = token.length;
  while (end > 0 && (token[end - 1] === '.' || token[end - 1] === ':' || token[end - 1] === '!')) end--;
  const core = token.slice(0, end);
  return HEX_DIGEST.test(core) || isIP(core) !== 0 ? MASK + token.slice(end) : token;
}
