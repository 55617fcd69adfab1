import type { Event } from '../ingest/event.ts';
import { readCookie } from '../http/cookies.ts';
import { visitorIdFrom, type CompiledSource, type HitSources, type VisitorId } from '../identity/visitor.ts';
import type { PreviewMark } from '../preview/types.ts';

/**
 * The consent signals a hit carries besides the Segment consent object (which is part of the
 * event), read at ingest while the request is at hand. Nothing is decoded here: strings are kept
 * as sent, and consent/resolve.ts decodes them with their bounds. See DESIGN.md, "Consent signals".
 */
export interface RequestSignals {
  /** `Sec-GPC: 1` (https://privacycg.github.io/gpc-spec/#the-sec-gpc-header-field-for-http-requests). */
  gpc: boolean;
  /** Google Consent Mode parameters as sent (gtag.js puts them in the hit's query string). */
  gcs?: string;
  gcd?: string;
  /** A TCF string and where it came from: `query:gdpr_consent`, `body:context.consent.privacy.tcfConsentString`, `cookie:euconsent-v2`. */
  tcf?: { value: string; source: string };
  /** The `gdpr` parameter: 1 → true, 0 → false, absent or anything else → undefined. */
  gdprApplies?: boolean;
  visitor?: VisitorId;
  /**
   * The geo header of `site.jurisdiction` (the visitor's country as the CDN saw it), as sent, when
   * present: the policy reads it (src/policy/jurisdiction.ts) to choose the hit's data control mode.
   * Kept raw so explain can show a value that names no region.
   */
  region?: { header: string; value: string };
  /**
   * The preview the hit belongs to (a valid preview token in its cookie or header, src/preview/),
   * set at accept. Preview hits are not journaled (src/pipeline/commit.ts), so it never reaches
   * the store: a restart loses them rather than sending them as ordinary hits.
   */
  preview?: PreviewMark;
}

/** What readSignals needs from config: where the visitor id is (identity), and the geo header. */
export interface SignalReading {
  sources: readonly CompiledSource[];
  maxIdLength: number;
  /** `site.jurisdiction.header`, lower-case; absent: no region is read. */
  regionHeader?: string | undefined;
}

/** Longest geo header value kept: a country code is two letters; anything much longer is not one. */
const MAX_REGION_CHARS = 16;

/** Longest raw signal string kept; the decoders bound them again (TCF to its configured length). */
const MAX_SIGNAL_CHARS = 16_384;

export const NO_SIGNALS: RequestSignals = Object.freeze({ gpc: false });

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_SIGNAL_CHARS ? v : undefined;
}

/**
 * Reads the signals of one hit. TCF sources in order: the `gdpr_consent` parameter (what vendors'
 * pixels append, https://github.com/InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework/blob/master/TCFv2/IAB%20Tech%20Lab%20-%20CMP%20API%20v2.md#how-does-the-url-based-service-process-the-tc-string-when-it-cant-execute-javascript),
 * then `context.consent.privacy.tcfConsentString` in the event (Seeka's field), then the
 * `euconsent-v2` cookie a CMP may set on the site's domain.
 */
export function readSignals(hit: HitSources, event: Event, identity: SignalReading): RequestSignals {
  const out: RequestSignals = { gpc: hit.headers['sec-gpc'] === '1' };
  const gcs = text(hit.query.get('gcs'));
  if (gcs !== undefined) out.gcs = gcs;
  const gcd = text(hit.query.get('gcd'));
  if (gcd !== undefined) out.gcd = gcd;
  const gdpr = hit.query.get('gdpr');
  if (gdpr === '1') out.gdprApplies = true;
  else if (gdpr === '0') out.gdprApplies = false;

  const privacy = event.context.consent?.privacy;
  const fromBody = privacy !== null && typeof privacy === 'object' ? text((privacy as Record<string, unknown>).tcfConsentString) : undefined;
  const fromQuery = text(hit.query.get('gdpr_consent'));
  const fromCookie = text(readCookie(hit.headers.cookie, 'euconsent-v2'));
  if (fromQuery !== undefined) out.tcf = { value: fromQuery, source: 'query:gdpr_consent' };
  else if (fromBody !== undefined) out.tcf = { value: fromBody, source: 'body:context.consent.privacy.tcfConsentString' };
  else if (fromCookie !== undefined) out.tcf = { value: fromCookie, source: 'cookie:euconsent-v2' };

  const visitor = visitorIdFrom(identity.sources, hit, identity.maxIdLength);
  if (visitor !== undefined) out.visitor = visitor;

  if (identity.regionHeader !== undefined) {
    // A header sent twice arrives as one joined value (or an array): not a country, so no region.
    const raw = hit.headers[identity.regionHeader];
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    if (typeof value === 'string' && value.length > 0) out.region = { header: identity.regionHeader, value: value.slice(0, MAX_REGION_CHARS) };
  }
  return out;
}
