import type { Request, RequestHandler } from 'express';
import { ValidationError } from '../../errors.ts';
import { jsonBody } from '../../http/body.ts';

/**
 * The fields of SecurePrivacy's Universal Consent requests (seed
 * secureprivacy-universal-consent-api.txt), read and bounded. Its names are PascalCase; like the
 * ASP.NET service it imitates, a name is also matched case-insensitively (`consentGiven`), and so
 * are ConsentGiven's values. Unknown fields are ignored, as that service does. Every refusal is a
 * 400 naming the field.
 */

export const CONSENT_GIVEN = ['All', 'Partial', 'None'] as const;
export type ConsentGiven = (typeof CONSENT_GIVEN)[number];

/** The seed: "Metadata: JSON model of the consent object, max. 200 characters". */
export const MAX_METADATA_CHARS = 200;
export const MAX_CUSTOM_USER_ID = 256;
export const MAX_REFERENCE = 512;
export const MAX_CONSENT_TYPE = 128;
export const MAX_URI = 2048;
export const MAX_WEBHOOK_URL = 2048;

/** Ours are UUIDs; SecurePrivacy's are 64 hex digits. */
const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;
// The same control characters src/store/ids.ts refuses in ids (Unicode Cc: C0, DEL, C1).
const CONTROL = /\p{Cc}/u;

export type Fields = Readonly<Record<string, unknown>>;

function refuse(name: string, message: string): never {
  throw new ValidationError(`${name}: ${message}`, { details: { issues: [{ path: name, message }] } });
}

/** The value of `name`: the exact key first, else the first key equal to it ignoring case. */
export function field(fields: Fields, name: string): unknown {
  if (Object.hasOwn(fields, name)) return fields[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(fields)) if (key.toLowerCase() === lower) return fields[key];
  return undefined;
}

function absent(v: unknown): boolean {
  return v === undefined || v === null || v === '';
}

/** A text field of at most `max` characters (code points), without control characters. */
export function text(fields: Fields, name: string, max: number, required: true): string;
export function text(fields: Fields, name: string, max: number, required?: false): string | undefined;
export function text(fields: Fields, name: string, max: number, required = false): string | undefined {
  const v = field(fields, name);
  if (absent(v)) return required ? refuse(name, 'required') : undefined;
  if (typeof v !== 'string') return refuse(name, 'a string expected');
  if ([...v].length > max) return refuse(name, `at most ${max} characters`);
  if (CONTROL.test(v)) return refuse(name, 'control characters are not allowed');
  if (!v.isWellFormed()) return refuse(name, 'not well-formed text');
  return v;
}

export function consentGiven(fields: Fields, required: true): ConsentGiven;
export function consentGiven(fields: Fields, required?: false): ConsentGiven | undefined;
export function consentGiven(fields: Fields, required = false): ConsentGiven | undefined {
  const v = field(fields, 'ConsentGiven');
  if (absent(v)) return required ? refuse('ConsentGiven', "required: 'All', 'Partial' or 'None'") : undefined;
  const found = typeof v === 'string' ? CONSENT_GIVEN.find((c) => c.toLowerCase() === v.toLowerCase()) : undefined;
  return found ?? refuse('ConsentGiven', "either of 'All', 'Partial', 'None'");
}

export function clientId(fields: Fields, name = 'ClientId'): string {
  const v = field(fields, name);
  if (absent(v)) return refuse(name, 'required');
  if (typeof v !== 'string' || !CLIENT_ID.test(v)) return refuse(name, '1-128 letters, digits, _ or -');
  return v;
}

/** A boolean given as JSON or as the text `true` / `false` (a query parameter). */
export function bool(fields: Fields, name: string): boolean | undefined {
  const v = field(fields, name);
  if (absent(v)) return undefined;
  if (v === true || v === 'true' || v === 'True') return true;
  if (v === false || v === 'false' || v === 'False') return false;
  return refuse(name, 'true or false');
}

/**
 * A DateTime filter: an ISO 8601 date or date-time. A date-time without a zone (what .NET
 * serialises for an unspecified DateTime) is read as UTC, not as this server's local time.
 */
export function dateTime(fields: Fields, name: string): number | undefined {
  const v = field(fields, name);
  if (absent(v)) return undefined;
  const s = typeof v === 'string' ? v.trim() : '';
  const m = /^\d{4}-\d{2}-\d{2}(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i.exec(s);
  if (m === null) return refuse(name, 'an ISO 8601 date or date-time, e.g. 2026-01-31T00:00:00Z');
  // Date.parse rolls an impossible day over (Feb 31 → Mar 3): refused instead.
  const [y, mo, d] = s.slice(0, 10).split('-').map(Number) as [number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return refuse(name, 'not a valid date');
  const iso = m[1] !== undefined && m[2] === undefined ? `${s.replace(' ', 'T')}Z` : s.replace(' ', 'T');
  const t = Date.parse(iso);
  return Number.isNaN(t) ? refuse(name, 'not a valid date') : t;
}

/** A positive integer (a query parameter's text too), at most `max`. */
export function int(fields: Fields, name: string, max: number): number | undefined {
  const v = field(fields, name);
  if (absent(v)) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,7}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) return refuse(name, `an integer from 1 to ${max}`);
  return n;
}

/**
 * The request's fields: its JSON body (an object) with its query parameters over it. The seed's
 * GET requests carry a JSON body (its check and query routes); clients that cannot send one
 * (browsers' fetch) use the query string.
 */
export function requestFields(req: Request): Fields {
  const body = req.body as unknown;
  if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) refuse('body', 'a JSON object expected');
  // Depth and member counts are bounded once, by jsonBody (src/http/body.ts), before parsing.
  const out: Record<string, unknown> = { ...(body as Record<string, unknown> | undefined) };
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (v !== undefined) refuse(k, 'give a query parameter once');
  }
  return out;
}

/** Reads a JSON body when the request has one (a GET may), else leaves `req.body` undefined. */
export function optionalJsonBody(limit: number): RequestHandler {
  const read = jsonBody(limit);
  return (req, res, next) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (req.headers['transfer-encoding'] === undefined && !(length > 0)) {
      req.body = undefined;
      next();
      return;
    }
    read(req, res, next);
  };
}
