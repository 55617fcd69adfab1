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
