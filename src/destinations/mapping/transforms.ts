/**
 * The value transforms of `@transform` and of redaction rules' `transform` (bind.ts): small, total
 * conversions between the shapes events carry and the shapes vendors take. A value a transform
 * cannot convert yields absent, never an exception.
 */
import { truncateIp } from './ip.ts';
import { isPresent } from './present.ts';

export const TRANSFORMS = [
  'lower', 'upper', 'trim', 'snakeCase', 'unixSeconds', 'unixMillis', 'unixMicros', 'isoDate',
  'toString', 'toNumber', 'toBoolean', 'truncateIp', 'stripQuery', 'googleDateTime',
] as const;
export type TransformFn = (typeof TRANSFORMS)[number];

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const ISO_DATE_START = /^\d{4}-\d{2}-\d{2}/;
/** Largest |ms| a JavaScript Date can hold. */
const MAX_DATE_MS = 8.64e15;

/**
 * A time as integer microseconds since the epoch. Numbers (or numeric strings) are read by
 * magnitude: |n| ≥ 1e14 is microseconds, ≥ 1e11 milliseconds, otherwise seconds (1e11 s is the
 * year 5138, 1e11 ms is 1973). Strings otherwise must be ISO 8601 (`YYYY-MM-DD…`).
 */
export function toEpochMicros(value: unknown): number | undefined {
  let micros: number;
  if (typeof value === 'string' && !NUMERIC.test(value.trim())) {
    if (!ISO_DATE_START.test(value.trim())) return undefined;
    const ms = Date.parse(value.trim());
    if (Number.isNaN(ms)) return undefined;
    micros = ms * 1000;
  } else {
    const n = typeof value === 'string' ? Number(value.trim()) : value;
    if (typeof n !== 'number' || !Number.isFinite(n)) return undefined;
    const magnitude = Math.abs(n);
    micros = magnitude >= 1e14 ? n : magnitude >= 1e11 ? n * 1e3 : n * 1e6;
  }
  micros = Math.round(micros);
  if (Math.abs(micros) > MAX_DATE_MS * 1000) return undefined;
  return micros;
}

/** Apply one transform; a value the transform cannot convert yields absent, never an exception. */
export function applyTransform(fn: TransformFn, value: unknown): unknown {
  let out: unknown;
  switch (fn) {
    case 'lower':
      out = scalarText(value)?.toLowerCase();
      break;
    case 'upper':
      out = scalarText(value)?.toUpperCase();
      break;
    case 'trim':
      out = scalarText(value)?.trim();
      break;
    case 'snakeCase':
      // "Order Completed" / "orderCompleted" → "order_completed": Segment-style names for vendors
      // (GA4) that only take letters, digits and underscores.
      out = scalarText(value)
        ?.replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1_$2')
        .replace(/[^\p{L}\p{N}]+/gu, '_')
        .replace(/^_+|_+$/g, '')
        .toLowerCase();
      break;
    case 'unixSeconds': {
      const micros = toEpochMicros(value);
      out = micros === undefined ? undefined : Math.floor(micros / 1e6);
      break;
    }
    case 'unixMillis': {
      const micros = toEpochMicros(value);
      out = micros === undefined ? undefined : Math.floor(micros / 1e3);
      break;
    }
    case 'unixMicros':
      out = toEpochMicros(value);
      break;
    case 'isoDate': {
      const micros = toEpochMicros(value);
      out = micros === undefined ? undefined : new Date(Math.floor(micros / 1e3)).toISOString();
      break;
    }
    case 'googleDateTime': {
      // Google Ads' "yyyy-mm-dd hh:mm:ss+|-hh:mm" (ClickConversion.conversion_date_time,
      // https://developers.google.com/google-ads/api/reference/rpc/v26/ClickConversion), in UTC:
      // the offset is part of the value, so +00:00 names the same instant as the visitor's zone would.
      const micros = toEpochMicros(value);
      if (micros === undefined) break;
      const iso = new Date(Math.floor(micros / 1e6) * 1e3).toISOString();
      // Years outside 0000–9999 are written ±YYYYYY by toISOString and have no such form.
      out = /^\d{4}-/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00:00` : undefined;
      break;
    }
    case 'toString':
      out = scalarText(value);
      break;
    case 'toNumber':
      if (typeof value === 'number') out = Number.isFinite(value) ? value : undefined;
      else if (typeof value === 'string' && NUMERIC.test(value.trim())) {
        const n = Number(value.trim());
        out = Number.isFinite(n) ? n : undefined;
      }
      break;
    case 'toBoolean':
      if (typeof value === 'boolean') out = value;
      else if (value === 1 || value === 0) out = value === 1;
      else if (typeof value === 'string') {
        const text = value.trim().toLowerCase();
        if (text === 'true' || text === '1' || text === 'yes') out = true;
        else if (text === 'false' || text === '0' || text === 'no') out = false;
      }
      break;
    case 'truncateIp':
      out = typeof value === 'string' ? truncateIp(value) : undefined;
      break;
    case 'stripQuery':
      if (typeof value === 'string') {
        const cut = value.search(/[?#]/);
        out = cut === -1 ? value : value.slice(0, cut);
      }
      break;
  }
  return isPresent(out) ? out : undefined;
}
