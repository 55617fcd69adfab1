/**
 * A bounded reader of the `Cookie` request header (RFC 6265 §5.4: `name=value` pairs joined by
 * "; "). Only what identity and consent need: look one cookie up by name. Untrusted input: at most
 * MAX_COOKIES pairs are looked at, and a value that fails percent-decoding is returned raw rather
 * than throwing (browsers do not percent-encode; some CMPs do).
 * https://www.rfc-editor.org/rfc/rfc6265#section-5.4
 */
export const MAX_COOKIES = 100;

/** The value of the first cookie called `name`, or undefined. Never throws. */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  let start = 0;
  for (let n = 0; n < MAX_COOKIES && start < text.length; n++) {
    let end = text.indexOf(';', start);
    if (end === -1) end = text.length;
    const eq = text.indexOf('=', start);
    if (eq !== -1 && eq < end && text.slice(start, eq).trim() === name) return decode(text.slice(eq + 1, end).trim());
    start = end + 1;
  }
  return undefined;
}

function decode(raw: string): string {
  // A quoted value (RFC 6265 cookie-value may be DQUOTEd) is read without its quotes.
  const value = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
