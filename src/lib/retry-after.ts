/**
 * `Retry-After` (RFC 9110 §10.2.3, https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3), read
 * one way for every outbound caller: vendor deliveries, webhooks and the upstream verify API.
 */

/**
 * Parses a `Retry-After` value (RFC 9110 §10.2.3,
 * https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3): either delta-seconds or an HTTP-date.
 * Returns the wait in ms from `now` (0 for a date in the past), or undefined when the value
 * matches neither grammar: garbage is ignored rather than guessed at.
 */
export function parseRetryAfter(value: string, now: number): number | undefined {
  // Field values may carry optional whitespace (OWS: SP / HTAB) around them (RFC 9110 §5.5).
  const v = value.replace(/^[ \t]+|[ \t]+$/g, '');
  if (/^[0-9]+$/.test(v)) {
    // delta-seconds = 1*DIGIT (RFC 9110 §1.2.2). A value too big for a double becomes Infinity,
    // which the caller treats as "beyond any deadline".
    return Number(v) * 1000;
  }
  const at = parseHttpDate(v, now);
  if (at === undefined) return undefined;
  return Math.max(0, at - now);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_LONG = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '([0-9]{2}):([0-9]{2}):([0-9]{2})';
// The three forms of RFC 9110 §5.6.7 (https://www.rfc-editor.org/rfc/rfc9110#section-5.6.7),
// which a recipient MUST accept. Names are case-sensitive there (%s"Jan"), so are ours.
const IMF_FIXDATE = new RegExp(`^${DAY}, ([0-9]{2}) ${MONTH} ([0-9]{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${DAY_LONG}, ([0-9]{2})-${MONTH}-([0-9]{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([0-9]{2}| [0-9]) ${TIME} ([0-9]{4})$`);

/** Parses an HTTP-date to epoch ms; undefined unless it is one of the three exact forms. */
export function parseHttpDate(value: string, now: number): number | undefined {
  let m = IMF_FIXDATE.exec(value);
  if (m) return toEpoch(m[3], m[1], m[2], m[4], m[5], m[6]);
  m = RFC850_DATE.exec(value);
  if (m) {
    const yy = Number(m[3]);
    // RFC 9110 §5.6.7: a two-digit year that appears more than 50 years in the future means
    // the most recent past year with the same last two digits.
    const nowYear = new Date(now).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + yy;
    if (year > nowYear + 50) year -= 100;
    return toEpoch(String(year), m[1], m[2], m[4], m[5], m[6]);
  }
  m = ASCTIME_DATE.exec(value);
  if (m) return toEpoch(m[6], m[2], m[1], m[3], m[4], m[5]);
  return undefined;
}

function toEpoch(
  yearS: string | undefined,
  dayS: string | undefined,
  monthS: string | undefined,
  hourS: string | undefined,
  minuteS: string | undefined,
  secondS: string | undefined,
): number | undefined {
  const year = Number(yearS);
  const day = Number(dayS?.trim());
  const month = MONTHS.indexOf(monthS ?? '');
  const hour = Number(hourS);
  const minute = Number(minuteS);
  const second = Number(secondS);
  // second may be 60: the date grammar of RFC 5322 §3.3 allows a leap second.
  if (month < 0 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 onto 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  // Reject 31 Feb and friends instead of letting Date roll them into March.
  if (d.getUTCDate() !== day) return undefined;
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

/**
 * The one value of a `Retry-After` field received as a header (undici gives an array for a
 * repeated field). Repeated fields count only when they agree: picking one of two disagreeing
 * values would be a guess about which the server meant.
 */
export function singleRetryAfter(value: string | string[] | undefined): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  const first = value[0];
  return first !== undefined && value.every((v) => v === first) ? first : undefined;
}
