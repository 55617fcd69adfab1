/**
 * The one rule for the text of a subject id (a visitor, user or customer id) and of an item name,
 * on every route and in the store itself, so SQLite and PostgreSQL hold exactly the same ids:
 * - 1 to MAX_SUBJECT_ID UTF-16 code units;
 * - no control character (Unicode category Cc: C0 U+0000–U+001F, DEL, C1 U+0080–U+009F).
 *   PostgreSQL refuses a NUL in text outright (the statement fails), SQLite stores it: without
 *   this rule the engines disagree, and a NUL in one row of a batch fails the whole transaction;
 * - well-formed UTF-16 (no lone surrogate): either driver encodes a lone surrogate as U+FFFD, so
 *   "a\uD800" and "a\uDBFF" would be stored as the same id, two customers collapsed into one.
 * Printable text otherwise is kept exactly (spaces, emails, any script).
 */

export const MAX_SUBJECT_ID = 256;
/** An item name is a category (at most 128 characters) or `ref:` and an object reference (512). */
export const MAX_ITEM_TEXT = 1024;

const CONTROL = /\p{Cc}/u;

/** Why `id` cannot be an id ("required", "at most 256 characters", …), or undefined when it can. */
export function idProblem(id: unknown, max = MAX_SUBJECT_ID): string | undefined {
  if (typeof id !== 'string' || id.length === 0) return 'required (a non-empty string)';
  if (id.length > max) return `at most ${max} characters`;
  if (!id.isWellFormed()) return 'not well-formed text (a lone UTF-16 surrogate)';
  const control = CONTROL.exec(id);
  if (control !== null) return `no control characters (U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at ${control.index})`;
  return undefined;
}
