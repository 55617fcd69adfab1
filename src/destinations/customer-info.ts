/**
 * The parts of Meta's customer-information normalisation that need data or a parser: phone numbers
 * to E.164, country names to ISO 3166-1 alpha-2, US state names to their ANSI codes, dates of birth
 * to YYYYMMDD. `normalizeForHash` (mapping/normalize.ts) calls these; the rules are Meta's:
 * https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
 * Every function is pure and returns undefined when nothing usable is left.
 */
import { getCountryCallingCode, isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { COUNTRIES } from './country-codes.ts';
import { US_STATES } from './us-states.ts';

/** Longest phone text parsed; libphonenumber itself refuses more than 250 characters. */
export const MAX_PHONE_CHARS = 64;
/** Longest place name (country, state) looked up. */
const MAX_PLACE_CHARS = 100;

/**
 * The key a place name is looked up by: accents and case folded, `&` read as "and", a leading
 * "the" dropped, and everything but ASCII letters and digits removed ("Côte d’Ivoire" → "cotedivoire",
 * "St. Kitts & Nevis" → "stkittsandnevis", "The Gambia" → "gambia").
 */
export function placeKey(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/&/g, ' and ')
    .trim()
    .replace(/^the\s+/, '')
    .replace(/[^a-z0-9]/g, '');
}

function lookupTable(table: Readonly<Record<string, readonly string[]>>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [code, names] of Object.entries(table)) {
    out.set(code.toLowerCase(), code.toLowerCase());
    for (const name of names) out.set(placeKey(name), code.toLowerCase());
  }
  return out;
}

const COUNTRY_BY_KEY = lookupTable(COUNTRIES);
const STATE_BY_KEY = lookupTable(US_STATES);

/** ISO 3166-1 alpha-2, lowercase, from a code (alpha-2 or alpha-3) or an English name; else undefined. */
export function countryCode(raw: string): string | undefined {
  if (raw.length > MAX_PLACE_CHARS) return undefined;
  return COUNTRY_BY_KEY.get(placeKey(raw));
}

/** The two-letter code of a US state, territory or DC, lowercase, from its code or name; else undefined. */
export function usStateCode(raw: string): string | undefined {
  if (raw.length > MAX_PLACE_CHARS) return undefined;
  return STATE_BY_KEY.get(placeKey(raw));
}

/**
 * A phone number as Meta wants it: E.164 digits without `+` ("+44 (0)20 7946 0958" → 442079460958).
 *
 * - A number written internationally (`+…`, or `00…`, the international prefix of most countries)
 *   is parsed as such; libphonenumber drops a trunk prefix written after the country code
 *   (`+44 (0)20…`), which plain digit stripping would keep.
 * - Otherwise, with the customer's country (`address.country`), the number is read as a national
 *   number of that country ("020 7946 0958", GB → 442079460958; "(650) 555-1212", US →
 *   16505551212), unless its digits already start with that country's calling code and read as a
 *   valid international number ("442079460958" stays itself).
 * - Without a country, digits that can be an international number are read as one.
 * - Whatever libphonenumber cannot read falls back to Meta's literal rule: digits only, leading
 *   zeros removed (which is also what a number that already has its country code needs).
 */
export function phoneDigits(raw: string, country?: string): string | undefined {
  if (raw.length > MAX_PHONE_CHARS) return undefined;
  const text = raw.trim();
  const digits = text.replace(/\D/g, '');
  const bare = digits.replace(/^0+/, '');
  if (bare === '') return undefined;
  const region = regionOf(country);
  let found: string | undefined;
  if (text.startsWith('+') || digits.startsWith('00')) {
    // Written internationally: the country code is there, the length check is enough.
    found = e164(`+${digits.replace(/^00/, '')}`, 'possible') ?? e164(text, 'possible') ?? e164(`+${bare}`, 'possible');
  } else if (region !== undefined) {
    // National or international? The full validity check (number ranges, not only lengths) decides.
    const national = (): string | undefined => e164(text, 'valid', region);
    const international = (): string | undefined => e164(`+${bare}`, 'valid');
    const code = getCountryCallingCode(region);
    // Neither valid (a range newer than libphonenumber's metadata, a reserved one): a national
    // reading of the right length still gets the country code, rather than the bare digits.
    found = (bare.startsWith(code) && !digits.startsWith('0') ? (international() ?? national()) : (national() ?? international())) ?? e164(text, 'possible', region);
  } else {
    found = e164(`+${bare}`, 'possible');
  }
  return found ?? bare;
}

/**
 * The E.164 digits (no `+`) of a number libphonenumber reads as possible (its length fits the
 * country) or valid (it is in an assigned range); else undefined. Validity costs about three times
 * a parse, so it is asked only where it decides between two readings.
 */
function e164(text: string, check: 'possible' | 'valid', region?: CountryCode): string | undefined {
  const parsed = parsePhoneNumberFromString(text, region);
  if (parsed === undefined || !(check === 'valid' ? parsed.isValid() : parsed.isPossible())) return undefined;
  return parsed.number.slice(1);
}

function regionOf(country: string | undefined): CountryCode | undefined {
  if (country === undefined) return undefined;
  const code = countryCode(country)?.toUpperCase();
  return code !== undefined && isSupportedCountry(code) ? code : undefined;
}

const MIN_BIRTH_YEAR = 1900;

function isCalendarDate(y: number, m: number, d: number): boolean {
  if (y < MIN_BIRTH_YEAR || m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] ?? 0;
  return d <= days;
}

function ymd(y: number, m: number, d: number): string | undefined {
  if (!isCalendarDate(y, m, d)) return undefined;
  return `${String(y)}${String(m).padStart(2, '0')}${String(d).padStart(2, '0')}`;
}

const YEAR_FIRST = /^(\d{4})([-/.]?)(\d{1,2})\2(\d{1,2})(?:[T ].*)?$/;
const YEAR_LAST = /^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})$/;

/**
 * A date of birth as Meta's `db`: YYYYMMDD, a real calendar date from 1900 on. Read:
 * `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `YYYYMMDD` (and an ISO timestamp's date part);
 * `MM/DD/YYYY` (the slash with the year last is read month first, as in the US and in Meta's
 * own example "2/16/1997"); `DD.MM.YYYY` and `DD-MM-YYYY` (dots or dashes with the year last are
 * read day first, as in Europe). When the conventional reading is no date but the other one is
 * ("31/01/1990", "01.31.1990"), the other one is taken: only one date is possible. Anything else
 * is absent. The future is not refused: normalisation is pure and has no clock.
 */
export function birthDate(raw: string): string | undefined {
  const text = raw.trim();
  if (text.length > 40) return undefined;
  const first = YEAR_FIRST.exec(text);
  if (first !== null) {
    const [, y = '', sep = '', m = '', d = ''] = first;
    // Without separators only the 8-digit form is unambiguous.
    if (sep === '' && (m.length !== 2 || d.length !== 2)) return undefined;
    return ymd(Number(y), Number(m), Number(d));
  }
  const last = YEAR_LAST.exec(text);
  if (last === null) return undefined;
  const [, a = '', sep = '', b = '', y = ''] = last;
  const [p, q, year] = [Number(a), Number(b), Number(y)];
  const monthFirst = sep === '/';
  return monthFirst ? (ymd(year, p, q) ?? ymd(year, q, p)) : (ymd(year, q, p) ?? ymd(year, p, q));
}
