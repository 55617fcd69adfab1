/**
 * Decoder for the Google Consent Mode v2 signals that Google tags attach to every GA4 / Ads hit:
 * `gcs` (two signals, current state) and `gcd` (four signals, with how each state came about).
 *
 * Google documents the consent types and the `default` / `update` commands
 * (https://developers.google.com/tag-platform/security/guides/consent,
 * https://support.google.com/analytics/answer/12334711) but does not publish the wire format of
 * `gcs` / `gcd`. What follows is the format as established by widely cited write-ups, cross-checked
 * against each other (and several secondary pages that contradict them were rejected; see below):
 *
 * - Markus Baersch on Simo Ahava's blog, the reference for the `gcd` letters:
 *   https://www.simoahava.com/analytics/consent-mode-v2-google-tags/
 * - `gcs` as `G1` + ad_storage digit + analytics_storage digit, 1 granted, 0 denied:
 *   https://adriennevermorel.com/notes/consent-mode-debugging-network-parameters/
 *   https://pietromingotti.com/consent-mode-parameters/
 *   https://www.giancampo.com/2024/02/understanding-new-gcd-parameter-in-ga4.html (also: nine letters)
 * - Each `gcd` letter is one digit of the alphabet `0-9a-zA-Z-_`; bits 2-3 carry the default and
 *   bits 0-1 the update, each 1 = not set, 2 = denied, 3 = granted. The nine documented letters are
 *   exactly the nine combinations with bit 4 set, which corroborates the table below:
 *   https://github.com/analytics-debugger/gtm-template-server-side-google-consent-parser (README)
 * - Real strings with other prefix/separator/terminator digits and a suffix (`13t3t3t2t5l1`,
 *   `13r3r3r2r6l1`): https://community.shopify.com/t/consent-mode-v2-for-shopify-with-the-right-gcd-parameters/400762
 *   (used for the shape only: that thread's reading of the letters contradicts the sources above).
 *
 * Some pages read `l` as denied, or `p`/`r` as denied and `q`/`m` as granted; they disagree with the
 * primary write-up and with the bit layout, so they are not followed. A letter outside the table
 * (e.g. `e`, uppercase, digits) is not documented: it yields `unset`, never `granted`.
 *
 * Inputs are untrusted query parameters: anything that is not a primitive string, or longer than
 * {@link GCM_MAX_LENGTH}, is ignored. Parsing reads fixed character positions (no regex, so no
 * backtracking), and no function here throws.
 */

export type GcmSignal = 'ad_storage' | 'analytics_storage' | 'ad_user_data' | 'ad_personalization';

/** In `gcd` order: the letters appear in this order (Simo Ahava / Baersch, link above). */
export const GCM_SIGNALS: readonly GcmSignal[] = Object.freeze(['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'] as const);

export type GcmValue = 'granted' | 'denied' | 'unset';

export interface GcdSignal {
  /** The effective state: the update when there was one, else the default, else `unset`. */
  value: GcmValue;
  default?: 'granted' | 'denied';
  update?: 'granted' | 'denied';
  /** The raw letter, kept when the string was well formed (also for unknown letters, for logs). */
  letter?: string;
}

export type GcsState = { ad_storage: 'granted' | 'denied'; analytics_storage: 'granted' | 'denied' };

/** Real values are 4 (`gcs`) and 10-12 (`gcd`) characters; anything much longer is not one of them. */
export const GCM_MAX_LENGTH = 64;

type Decided = 'granted' | 'denied';
interface LetterMeaning {
  default?: Decided;
  update?: Decided;
}

/**
 * The nine documented letters (https://www.simoahava.com/analytics/consent-mode-v2-google-tags/).
 * A Map, not an object literal, so that no inherited key can ever be looked up.
 */
export const GCD_LETTERS: ReadonlyMap<string, Readonly<LetterMeaning>> = new Map<string, Readonly<LetterMeaning>>([
  ['l', {}], // not set by Consent Mode at all
  ['p', { default: 'denied' }], // denied by default, no update
  ['q', { default: 'denied', update: 'denied' }], // denied by default, denied again by an update
  ['t', { default: 'granted' }], // granted by default, no update
  ['r', { default: 'denied', update: 'granted' }], // denied by default, granted by an update
  ['m', { update: 'denied' }], // no default, denied by an update
  ['n', { update: 'granted' }], // no default, granted by an update
  ['u', { default: 'granted', update: 'denied' }], // granted by default, denied by an update
  ['v', { default: 'granted', update: 'granted' }], // granted by default, granted again by an update
]);

function isGcmString(input: unknown): input is string {
  // Bound before anything else touches the value, so a huge parameter costs nothing.
  return typeof input === 'string' && input.length > 0 && input.length <= GCM_MAX_LENGTH;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isAlnum(code: number): boolean {
  return isDigit(code) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/**
 * `gcs`: exactly `G1` then one `0`/`1` for ad_storage and one for analytics_storage. Anything else
 * (including `G1` alone or a longer string) carries no usable information: undefined, never granted.
 */
export function decodeGcs(input: unknown): GcsState | undefined {
  if (!isGcmString(input) || input.length !== 4) return undefined;
  if (input[0] !== 'G' || input[1] !== '1') return undefined;
  const ad = input[2];
  const analytics = input[3];
  if ((ad !== '0' && ad !== '1') || (analytics !== '0' && analytics !== '1')) return undefined;
  return { ad_storage: ad === '1' ? 'granted' : 'denied', analytics_storage: analytics === '1' ? 'granted' : 'denied' };
}

function allUnset(): Record<GcmSignal, GcdSignal> {
  return {
    ad_storage: { value: 'unset' },
    analytics_storage: { value: 'unset' },
    ad_user_data: { value: 'unset' },
    ad_personalization: { value: 'unset' },
  };
}

/** Where each signal's letter sits; the characters around the letters are digits. */
const GCD_LAYOUT: readonly (readonly [GcmSignal, number])[] = [
  ['ad_storage', 2],
  ['analytics_storage', 4],
  ['ad_user_data', 6],
  ['ad_personalization', 8],
];
/** Two leading digits, four letters with a digit after each: `11p1p1p1p5` is the shortest real form. */
const GCD_MIN_LENGTH = 10;

/**
 * Whether `s` has the documented skeleton `DD?D?D?D?D` followed by an optional alphanumeric suffix
 * (e.g. the `l1` in `13r3r3r2r5l1`). The prefix, separator and terminator digits vary between tag
 * versions (`11…1…5`, `13…3…2…5`, `…3`, `…6`: Shopify thread above), so any digit is accepted there;
 * what they encode is not documented and is not needed to read the four letters.
 */
function hasGcdShape(s: string): boolean {
  if (s.length < GCD_MIN_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (i < GCD_MIN_LENGTH && i >= 2 && i % 2 === 0) {
      // Letter slot: must be a single ASCII alphanumeric so the table lookup sees a clean letter;
      // an alphanumeric that is not in the table still decodes to `unset`.
      if (!isAlnum(code)) return false;
    } else if (i < GCD_MIN_LENGTH) {
      if (!isDigit(code)) return false;
    } else if (!isAlnum(code)) {
      return false;
    }
  }
  return true;
}

function fromLetter(letter: string): GcdSignal {
  const meaning = GCD_LETTERS.get(letter);
  if (meaning === undefined) return { value: 'unset', letter };
  const out: GcdSignal = { value: meaning.update ?? meaning.default ?? 'unset', letter };
  if (meaning.default !== undefined) out.default = meaning.default;
  if (meaning.update !== undefined) out.update = meaning.update;
  return out;
}

/**
 * `gcd`: every signal is present in the result. A malformed string gives `unset` for all four;
 * an unknown letter gives `unset` for its signal only. The update wins over the default, because an
 * update is the visitor's later choice replacing the site's default
 * (https://developers.google.com/tag-platform/security/guides/consent).
 */
export function decodeGcd(input: unknown): Record<GcmSignal, GcdSignal> {
  const out = allUnset();
  if (!isGcmString(input) || !hasGcdShape(input)) return out;
  for (const [signal, position] of GCD_LAYOUT) out[signal] = fromLetter(input.charAt(position));
  return out;
}

function readParam(params: unknown, key: 'gcs' | 'gcd'): unknown {
  if (typeof params !== 'object' || params === null) return undefined;
  try {
    // A hostile object (getter, Proxy) must not be able to make consent decoding throw.
    return (params as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/**
 * Both parameters combined, per signal: `gcd` when it says something, else `gcs` (which only
 * carries ad_storage and analytics_storage). When both say something and disagree the result is
 * `denied`: a hit carrying contradictory consent must not be read as consent.
 */
export function gcmState(params: { gcs?: unknown; gcd?: unknown }): Record<GcmSignal, GcmValue> {
  const gcd = decodeGcd(readParam(params, 'gcd'));
  const gcs = decodeGcs(readParam(params, 'gcs'));
  const combine = (fromGcd: GcmValue, fromGcs: GcmValue): GcmValue => {
    if (fromGcd === 'unset') return fromGcs;
    if (fromGcs === 'unset' || fromGcs === fromGcd) return fromGcd;
    return 'denied';
  };
  return {
    ad_storage: combine(gcd.ad_storage.value, gcs?.ad_storage ?? 'unset'),
    analytics_storage: combine(gcd.analytics_storage.value, gcs?.analytics_storage ?? 'unset'),
    ad_user_data: gcd.ad_user_data.value,
    ad_personalization: gcd.ad_personalization.value,
  };
}
