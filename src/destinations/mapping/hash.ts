/**
 * SHA-256 of normalised customer information, lowercase hex, as Meta's Conversions API takes it
 * (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters).
 * A value that already is a digest (hashed by the site, or by the pixel's advanced matching:
 * https://developers.facebook.com/docs/meta-pixel/advanced/advanced-matching) is passed through.
 */
import { hash } from 'node:crypto';
import { isSha256Hex, sha256Digest } from '../../lib/sha256-digest.ts';
import { MAX_ARRAY_ITEMS } from './limits.ts';
import { normalizeForHash, type HashKind, type NormalizeOptions } from './normalize.ts';

function hashOne(kind: HashKind, value: unknown, options: NormalizeOptions): string | undefined {
  let raw: string;
  if (typeof value === 'string') raw = value;
  else if (typeof value === 'number' && Number.isFinite(value)) raw = String(value);
  else return undefined;
  const trimmed = raw.trim();
  // Already a SHA-256 digest: hashing again would break matching; the digest of the empty string
  // is no value at all.
  if (isSha256Hex(trimmed)) return sha256Digest(trimmed);
  const normalized = normalizeForHash(kind, raw, options);
  if (normalized === undefined) return undefined;
  // One-shot hash (Node ≥ 21.7) avoids a Hash object per value on the hot path.
  return hash('sha256', normalized, 'hex');
}

/** Normalise and SHA-256 a value (or each element of an array); absent when nothing is left. */
export function hashValue(kind: HashKind, value: unknown, options: NormalizeOptions = {}): string | string[] | undefined {
  if (Array.isArray(value)) {
    const out: string[] = [];
    const n = Math.min(value.length, MAX_ARRAY_ITEMS);
    for (let i = 0; i < n; i++) {
      const hashed = hashOne(kind, value[i], options);
      if (hashed !== undefined) out.push(hashed);
    }
    return out.length > 0 ? out : undefined;
  }
  return hashOne(kind, value, options);
}
