/**
 * Dotted paths (`user_data.em`, `envelope.consent.ad_user_data`) name fields of a rendered item or
 * envelope in `required`, `patterns`, `idempotencyKey` and `redact`. They are parsed once at template
 * load. The edit helpers never mutate their input: a rendered item may share structure with the
 * event (e.g. the webhook's `{"@path": "$"}`) and with frozen template constants, so a redaction
 * copies only the objects along the path it changes.
 */

export const MAX_DOTTED_DEPTH = 32;

/** Segments that could reach an object's prototype; refused in every path a template names. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const SEGMENT = /^[A-Za-z0-9_$@-]+$/;

/** Parse `a.b.c` into its segments, or explain why it is not a valid dotted path. */
export function parseDottedPath(source: string): { segments: string[] } | { error: string } {
  if (source.length === 0) return { error: 'empty path' };
  const segments = source.split('.');
  if (segments.length > MAX_DOTTED_DEPTH) return { error: `path deeper than ${MAX_DOTTED_DEPTH} segments` };
  for (const segment of segments) {
    if (!SEGMENT.test(segment)) return { error: `invalid path segment "${segment}" (use letters, digits, _ $ @ -)` };
    if (FORBIDDEN_KEYS.has(segment)) return { error: `path segment "${segment}" is not allowed` };
  }
  return { segments };
}

export function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Read a dotted path; own properties of plain objects only. */
export function getDotted(value: unknown, segments: readonly string[]): unknown {
  let current = value;
  for (const segment of segments) {
    if (!isPlainRecord(current) || !Object.hasOwn(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

/** A copy of `value` without the field at `segments` (the same object when there is none). */
export function withoutDotted<T>(value: T, segments: readonly string[], index = 0): T {
  if (!isPlainRecord(value)) return value;
  const key = segments[index];
  if (key === undefined || !Object.hasOwn(value, key)) return value;
  if (index === segments.length - 1) {
    const copy: Record<string, unknown> = { ...value };
    delete copy[key];
    return copy as T;
  }
  const child = value[key];
  const updated = withoutDotted(child, segments, index + 1);
  if (updated === child) return value;
  return { ...value, [key]: updated };
}

/** A copy of `value` with `fieldValue` at `segments`, creating (or replacing non-object) parents. */
export function withDotted(value: Record<string, unknown>, segments: readonly string[], fieldValue: unknown, index = 0): Record<string, unknown> {
  const key = segments[index];
  if (key === undefined) return value;
  if (index === segments.length - 1) return { ...value, [key]: fieldValue };
  const child = Object.hasOwn(value, key) ? value[key] : undefined;
  const base = isPlainRecord(child) ? child : {};
  return { ...value, [key]: withDotted(base, segments, fieldValue, index + 1) };
}
