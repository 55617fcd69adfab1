import type { VendorRequest } from '../destinations/types.ts';

const MASK = '[secret]';

/** Replaces every occurrence of a secret (raw or URL-encoded) in a vendor request, for explain output and logs. */
export function maskRequest(req: VendorRequest, secrets: readonly string[]): VendorRequest {
  const needles = secrets
    .filter((s) => s.length > 0)
    .flatMap((s) => [s, encodeURIComponent(s)])
    // Longest first, so a secret containing another is masked whole.
    .sort((a, b) => b.length - a.length);
  const mask = (s: string): string => needles.reduce((acc, n) => acc.split(n).join(MASK), s);
  const out: VendorRequest = {
    method: req.method,
    url: mask(req.url),
    headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, mask(v)])),
  };
  if (req.body !== undefined) out.body = mask(req.body);
  return out;
}
