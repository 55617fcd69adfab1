/**
 * The normalisation Meta's Conversions API asks for before a customer-information value is hashed
 * (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters),
 * one rule per kind of value. The rules needing data or a parser (phones, countries, US states,
 * dates of birth) are in ../customer-info.ts.
 */
import { birthDate, countryCode, phoneDigits, usStateCode } from '../customer-info.ts';

export const HASH_KINDS = [
  'email', 'phone', 'phoneE164', 'name', 'city', 'state', 'zip', 'country', 'externalId', 'gender', 'dateOfBirth', 'plain',
  'googleEmail',
] as const;
export type HashKind = (typeof HASH_KINDS)[number];

export interface NormalizeOptions {
  /** For `phone` and `phoneE164`: the customer's country (ISO code or name), to read a national number. */
  country?: string;
}

/**
 * Names, cities and regions: lowercase, no punctuation, symbols or spaces; letters of any script are
 * kept, in Unicode NFC so that a decomposed "Vale\u0301ry" hashes like "Valéry". Spaces go too, as
 * Meta's own normaliser in fbevents.js and its Conversions API parameter builder remove them
 * ("Mary Ann" → "maryann"), so the server hash matches the browser's.
 */
function lettersOnly(raw: string): string {
  return raw.normalize('NFC').toLowerCase().replace(/[\p{P}\p{S}\s]/gu, '').normalize('NFC');
}

/**
 * Normalise one value of a kind. Returns undefined when nothing usable is left, so the hash of an
 * empty string is never made. Idempotent: normalising twice changes nothing.
 */
export function normalizeForHash(kind: HashKind, raw: string, options: NormalizeOptions = {}): string | undefined {
  let out: string | undefined;
  switch (kind) {
    case 'email':
      out = raw.trim().toLowerCase();
      break;
    case 'phone':
      out = phoneDigits(raw, options.country);
      break;
    case 'googleEmail': {
      // Google Ads Enhanced Conversions: trimmed and lowercased, and for gmail.com and
      // googlemail.com addresses the periods of the local part removed
      // (https://developers.google.com/google-ads/api/docs/conversions/enhance-conversions#normalize-and-hash).
      out = raw.trim().toLowerCase();
      const at = out.lastIndexOf('@');
      if (at > 0 && /^(?:gmail|googlemail)\.com$/.test(out.slice(at + 1))) out = `${out.slice(0, at).replace(/\./g, '')}${out.slice(at)}`;
      break;
    }
    case 'phoneE164': {
      // The E.164 form with its "+", where Meta hashes the digits alone: TikTok's Events API
      // (`+12133734253`, https://business-api.tiktok.com/portal/docs?id=1771100865818625) and Google
      // Ads Enhanced Conversions ("+11234567890",
      // https://developers.google.com/google-ads/api/docs/conversions/enhance-conversions#normalize-and-hash).
      const digits = phoneDigits(raw, options.country);
      out = digits === undefined ? undefined : `+${digits}`;
      break;
    }
    case 'name':
    case 'city':
      out = lettersOnly(raw);
      break;
    case 'state':
      // A US state (name or code) becomes its 2-letter ANSI code; other regions are lowercased and
      // stripped like a city ("New South Wales" → "newsouthwales"), as Meta asks.
      out = usStateCode(raw) ?? lettersOnly(raw);
      break;
    case 'zip':
      out = raw.toLowerCase().replace(/[\s-]/g, '');
      // US ZIP+4 ("94025-1234") keeps only the 5-digit ZIP.
      if (/^\d{9}$/.test(out)) out = out.slice(0, 5);
      break;
    case 'country':
      out = countryCode(raw);
      break;
    case 'gender': {
      const first = raw.trim().toLowerCase()[0];
      if (first !== 'f' && first !== 'm') return undefined;
      out = first;
      break;
    }
    case 'dateOfBirth':
      out = birthDate(raw);
      break;
    case 'externalId':
    case 'plain':
      out = raw.trim();
      break;
  }
  return out === undefined || out === '' ? undefined : out;
}
