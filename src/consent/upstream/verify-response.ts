/**
 * Reads the body of a 200 from the upstream verify API (seed
 * cookieboss-consent-verification-api.txt, "Response" and "Response when no consent is found")
 * and maps the upstream's category names onto the site's categories. Pure; never throws.
 *
 * Strict on types, so that nothing but an explicit `true` in a well-formed body can ever become
 * `granted`:
 * - `hasConsent` must be a boolean. `categories` must be null or a JSON object (not an array);
 *   `consentedAt` null or a parseable date string; `geoCountry` null or a short string. An absent
 *   optional field reads as null (only its type is checked); unknown extra fields are ignored so
 *   the upstream may add some.
 * - `{hasConsent: false, categories: null}` is "no consent found": `found: false`, no categories.
 *   The visitor has not answered the banner, so the site's categories stay unknown (DESIGN.md,
 *   "Consent resolution", 4), which is not the same as denied.
 * - `{hasConsent: false, categories: {...}}` is a consent record that grants nothing: every
 *   mapped category present is denied, whatever its value (the seed's own examples read
 *   consent as `hasConsent && categories.x`).
 * - `{hasConsent: true, categories: null}` contradicts itself: malformed.
 * - In a category object, `true` is granted and any other value (false, "true", 1, null, {}) is
 *   denied: an invalid consent input revokes (DESIGN.md, Bloomreach's rule). Upstream names not
 *   in the map are ignored; a site category named by several upstream names is granted only if
 *   all of those present say `true`.
 */
export type CategoryDecision = 'granted' | 'denied';

export interface VerifyAnswer {
  /** False for the upstream's "no consent found" shape. */
  readonly found: boolean;
  /** Site category → decision, only for mapped categories the upstream answered for. */
  readonly categories: Readonly<Record<string, CategoryDecision>>;
  readonly consentedAt?: string;
  readonly geoCountry?: string;
  /** Client clock time the answer arrived. */
  readonly fetchedAt: number;
}

const MAX_STRING_FIELD = 64;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The answer, or undefined when the body is malformed. */
export function interpretVerifyBody(
  text: string,
  categoryMap: Readonly<Record<string, string>>,
  fetchedAt: number,
): VerifyAnswer | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(body)) return undefined;

  const { hasConsent, categories, consentedAt, geoCountry } = body;
  if (typeof hasConsent !== 'boolean') return undefined;
  if (categories !== undefined && categories !== null && !isPlainObject(categories)) return undefined;
  if (consentedAt !== undefined && consentedAt !== null) {
    if (typeof consentedAt !== 'string' || consentedAt.length > MAX_STRING_FIELD || !Number.isFinite(Date.parse(consentedAt))) {
      return undefined;
    }
  }
  if (geoCountry !== undefined && geoCountry !== null) {
    if (typeof geoCountry !== 'string' || geoCountry.length > MAX_STRING_FIELD) return undefined;
  }

  const extras: { consentedAt?: string; geoCountry?: string } = {};
  if (typeof consentedAt === 'string') extras.consentedAt = consentedAt;
  if (typeof geoCountry === 'string' && geoCountry !== '') extras.geoCountry = geoCountry;

  if (categories === undefined || categories === null) {
    if (hasConsent) return undefined;
    return Object.freeze({ found: false, categories: Object.freeze({}), ...extras, fetchedAt });
  }
  return Object.freeze({ found: true, categories: mapCategories(categories, categoryMap, hasConsent), ...extras, fetchedAt });
}

/** Upstream names → site categories, with the rules in the header comment. */
export function mapCategories(
  upstream: Readonly<Record<string, unknown>>,
  categoryMap: Readonly<Record<string, string>>,
  hasConsent: boolean,
): Readonly<Record<string, CategoryDecision>> {
  // A Map, not an object: site-category names come from configuration and must not meet
  // Object.prototype (a category called "constructor" or "__proto__").
  const out = new Map<string, CategoryDecision>();
  for (const name of Object.keys(upstream)) {
    // Own properties only: an upstream name like "toString" must not find a prototype method.
    if (!Object.hasOwn(categoryMap, name)) continue;
    const site = categoryMap[name];
    if (typeof site !== 'string') continue;
    const decision: CategoryDecision = hasConsent && upstream[name] === true ? 'granted' : 'denied';
    const previous = out.get(site);
    out.set(site, previous === undefined || previous === decision ? decision : 'denied');
  }
  // fromEntries defines own properties, so even "__proto__" lands as a plain key.
  return Object.freeze(Object.fromEntries(out));
}
