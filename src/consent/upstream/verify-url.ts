/**
 * The verify request's URL from the configured template (seed
 * cookieboss-consent-verification-api.txt, "Endpoint"). Placeholders: `{base}` (raw, trailing
 * slashes removed), `{siteId}` and `{visitorId}` (percent-encoded).
 */
import { ConfigError } from '../../errors.ts';

export const DEFAULT_URL_TEMPLATE = '{base}/api/v1/public/sites/{siteId}/consent/verify?visitor_id={visitorId}';

/**
 * Fills the URL template. Values are substituted in one pass, so a visitor id containing
 * "{siteId}" cannot be expanded again; site and visitor ids are percent-encoded
 * (encodeURIComponent) so an id cannot add path segments or query parameters.
 */
export function buildVerifyUrl(template: string, values: { base?: string; siteId: string; visitorId: string }): string {
  return template.replace(/\{(base|siteId|visitorId)\}/g, (_m, name: string) => {
    if (name === 'base') return (values.base ?? '').replace(/\/+$/, '');
    return encodeURIComponent(name === 'siteId' ? values.siteId : values.visitorId);
  });
}

/** Checks the template once (ConfigError) and returns the URL of each visitor's request. */
export function verifyUrlFor(template: string, base: string | undefined, siteId: string): (visitorId: string) => string {
  if (!template.includes('{visitorId}')) throw new ConfigError('upstream verify: urlTemplate must contain {visitorId}');
  if (template.includes('{base}') && (base === undefined || base === '')) {
    throw new ConfigError('upstream verify: urlTemplate uses {base} but baseUrl is not set');
  }
  let probe: URL;
  try {
    probe = new URL(buildVerifyUrl(template, { base, siteId, visitorId: 'v' }));
  } catch {
    throw new ConfigError('upstream verify: urlTemplate does not make a valid URL');
  }
  if (probe.protocol !== 'https:' && probe.protocol !== 'http:') throw new ConfigError('upstream verify: URL must be http(s)');
  return (visitorId) => buildVerifyUrl(template, { base, siteId, visitorId });
}
