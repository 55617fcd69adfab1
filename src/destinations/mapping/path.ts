/**
 * JSONPath-lite, the paths `@path` and `{{…}}` placeholders read: `$`, `$$`, then `.name`, `[index]`
 * or `["quoted name"]` segments. No wildcards, filters or recursion: a path names at most one value,
 * so reading it is O(depth).
 */
import { FORBIDDEN_KEYS, isPlainRecord } from '../../lib/dotted.ts';

/** Most segments in a `$` path. */
export const MAX_PATH_DEPTH = 32;

export type PathSegment = string | number;

export interface ParsedPath {
  /** `$` reads the current value (the event, or the element inside `@arrayPath`); `$$` the event. */
  base: 'current' | 'root';
  segments: PathSegment[];
}

const NAME_CHARS = /[A-Za-z0-9_-]/;

/** Parse a path once, at load; prototype-reaching segments are refused here, not at read time. */
export function parsePath(source: string): ParsedPath | { error: string } {
  if (!source.startsWith('$')) return { error: `path "${source}" must start with $` };
  const base = source.startsWith('$$') ? 'root' : 'current';
  let i = base === 'root' ? 2 : 1;
  const segments: PathSegment[] = [];
  while (i < source.length) {
    const c = source[i];
    if (c === '.') {
      let j = i + 1;
      while (j < source.length && NAME_CHARS.test(source[j] as string)) j++;
      if (j === i + 1) return { error: `path "${source}": expected a name after "." at ${i}` };
      segments.push(source.slice(i + 1, j));
      i = j;
    } else if (c === '[') {
      const q = source[i + 1];
      if (q === '"' || q === "'") {
        const end = source.indexOf(q, i + 2);
        if (end === -1 || source[end + 1] !== ']') return { error: `path "${source}": unterminated quoted name at ${i}` };
        const name = source.slice(i + 2, end);
        if (name.length === 0) return { error: `path "${source}": empty quoted name at ${i}` };
        segments.push(name);
        i = end + 2;
      } else {
        const end = source.indexOf(']', i);
        const digits = end === -1 ? '' : source.slice(i + 1, end);
        if (!/^\d{1,6}$/.test(digits)) return { error: `path "${source}": expected [index] or ["name"] at ${i}` };
        segments.push(Number(digits));
        i = end + 1;
      }
    } else {
      return { error: `path "${source}": unexpected "${c}" at ${i}` };
    }
    if (segments.length > MAX_PATH_DEPTH) return { error: `path "${source}" is deeper than ${MAX_PATH_DEPTH} segments` };
  }
  for (const segment of segments) {
    if (typeof segment === 'string' && FORBIDDEN_KEYS.has(segment)) {
      return { error: `path "${source}": segment "${segment}" is not allowed` };
    }
  }
  return { base, segments };
}

/** Read a parsed path's segments from `value`: own properties and in-range indexes only. */
export function readSegments(value: unknown, segments: readonly PathSegment[]): unknown {
  let current = value;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(current) || segment >= current.length) return undefined;
      current = current[segment];
    } else {
      if (!isPlainRecord(current) || !Object.hasOwn(current, segment)) return undefined;
      current = current[segment];
    }
  }
  return current;
}
