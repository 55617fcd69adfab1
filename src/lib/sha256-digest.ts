import { hash } from 'node:crypto';

/**
 * A SHA-256 digest as text, the form Meta's advanced matching sends and takes (`ud[em]`,
 * `user_data.em`: https://developers.facebook.com/docs/meta-pixel/advanced/advanced-matching):
 * 64 hex digits, case ignored. One rule for the pixel parser and the mapping's `@hash`, which
 * passes such a value through instead of hashing it again.
 */
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** The digest of the empty string: what a hashed empty field looks like, and never a match. */
const EMPTY_SHA256 = hash('sha256', '', 'hex');

/** The lower-case digest when `text` is a SHA-256 digest of something (not of the empty string); else undefined. */
export function sha256Digest(text: string): string | undefined {
  if (!SHA256_HEX.test(text)) return undefined;
  const digest = text.toLowerCase();
  return digest === EMPTY_SHA256 ? undefined : digest;
}

/** True for 64 hex digits, the empty-string digest included (a value that must not be hashed again). */
export function isSha256Hex(text: string): boolean {
  return SHA256_HEX.test(text);
}
