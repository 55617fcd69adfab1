import { bodyText, type VendorRequest } from '../destinations/types.ts';
import { maskUrlCredentials, secretMasker } from '../lib/mask-secrets.ts';

/** Masks secrets in a vendor request's URL (credential-like query parameters too), headers and body, for explain output and logs. */
export function maskRequest(req: VendorRequest, secrets: readonly string[]): VendorRequest {
  const mask = secretMasker(secrets);
  const out: VendorRequest = {
    method: req.method,
    url: maskUrlCredentials(mask(req.url)),
    headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, mask(v)])),
  };
  const body = bodyText(req);
  if (body !== undefined) out.body = mask(body);
  return out;
}
