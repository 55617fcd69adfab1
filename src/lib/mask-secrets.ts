/**
 * Secrets out of text: the one masker for vendor answers, webhook records, logs and explain output.
 */
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

/** Query parameters whose values are credentials whatever a template calls them (access_token, api_secret, key, sig…). */
const CREDENTIAL_PARAM = /token|secret|key|password|auth|signature|sig$/i;

/**
 * An http(s) URL without its credentials: user info removed and the values of credential-like query
 * parameters masked, whatever they are (a webhook URL's `?token=…` is a secret the template does not
 * declare). Text that is not an http(s) URL is returned as it is.
 */
export function maskUrlCredentials(text: string): string {
  if (!/^https?:\/\//i.test(text)) return text;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  const names = [...new Set(url.searchParams.keys())].filter((n) => CREDENTIAL_PARAM.test(n));
  if (url.username === '' && url.password === '' && names.length === 0) return text;
  url.username = '';
  url.password = '';
  for (const name of names) url.searchParams.set(name, MASK);
  // URLSearchParams encodes the brackets; shown as `[secret]`, as every other masked place shows it.
  return url.href.replaceAll(encodeURIComponent(MASK), MASK);
}
