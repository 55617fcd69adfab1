import { bodyText, type VendorRequest } from '../destinations/types.ts';

const MASK = '[secret]';

/**
 * A function that replaces every occurrence of the given secrets, raw or URL-encoded (query
 * strings carry them encoded), with `[secret]`. Longest first, so a secret that contains another
 * is masked whole.
 */
export function secretMasker(secrets: readonly string[]): (text: string) => string {
  const needles = [...new Set(secrets.filter((s) => s.length > 0).flatMap((s) => [s, encodeURIComponent(s)]))].sort((a, b) => b.length - a.length);
  return (text) => needles.reduce((acc, n) => acc.replaceAll(n, MASK), text);
}

/** Masks secrets in one text (a vendor's response excerpt, a log field). */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  return secretMasker(secrets)(text);
}

/** Masks secrets in a vendor request's URL, headers and body, for explain output and logs. */
export function maskRequest(req: VendorRequest, secrets: readonly string[]): VendorRequest {
  const mask = secretMasker(secrets);
  const out: VendorRequest = {
    method: req.method,
    url: mask(req.url),
    headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, mask(v)])),
  };
  const body = bodyText(req);
  if (body !== undefined) out.body = mask(body);
  return out;
}
