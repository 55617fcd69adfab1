/**
 * Per-row errors inside a 2xx answer (a template's `rowErrors`, docs/templates.md). The Google Ads
 * API in partial-failure mode answers 200 to a batch of conversions some of which failed: the
 * failed rows are listed in `partialFailureError.details[].errors[]`, each with the row's index in
 * `location.fieldPathElements` and a code in `errorCode`, and the rows that succeeded have a
 * result (https://developers.google.com/google-ads/api/docs/best-practices/partial-failures,
 * https://developers.google.com/google-ads/api/reference/rpc/latest/UploadClickConversionsResponse).
 * Counting such an answer as a delivery of the whole batch would acknowledge conversions Google
 * refused, so delivery asks `read` which rows failed and how.
 *
 * Pure: no I/O, and never throws on any body. What it cannot read for certain (a body cut at the
 * read limit, not JSON, an error without a row index or with one outside the batch) is
 * `unreadable`: the caller then treats the whole batch as rejected rather than guess which rows
 * arrived.
 */
import { isPlainRecord } from '../lib/dotted.ts';

export interface RowErrorsDefinition {
  /** Path into the body to each error object; `*` fans out over an array's elements or an object's values. */
  errors: string;
  /** Path in an error object to the row's index in the batch (0-based); numeric segments index arrays. */
  index: string;
  /** Path in an error object to its code; `*` takes the first string found (Google's `errorCode` is a one-key object). */
  code: string;
  /** Codes after which the row may succeed later (retried by the retry policy); every other code is final. */
  transient: readonly string[];
  /** The wait a transient row asks for before its retry (Google: "retry after 6 hours"), as a Retry-After would. */
  retryAfterSeconds?: number | undefined;
}

/** One failed row: its index in the batch and its code (a fixed label: vendor text never gets through). */
export interface RowFailure {
  index: number;
  code: string;
  transient: boolean;
}

export type RowErrorsVerdict =
  /** Some rows failed (sorted by index, one entry per row); the others were taken. */
  | { kind: 'rows'; failures: RowFailure[] }
  /** The answer could not be read for certain: no row may be counted delivered. */
  | { kind: 'unreadable' };

export interface CompiledRowErrors {
  /**
   * The verdict on a 2xx answer to a batch of `size` rows: undefined when no row failed. `truncated`:
   * the body was cut at the read limit.
   */
  read(body: string, truncated: boolean, size: number): RowErrorsVerdict | undefined;
}

/** Most error objects looked at in one answer: a batch has at most a few thousand rows. */
const MAX_ERRORS = 20_000;

/** A code as reported: upper-case identifier of at most 64 characters, else UNKNOWN (never free text). */
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** A path's segments; the template schema validated it (template-schema.ts `rulePath`: `*` or a dotted-path segment). */
const segmentsOf = (source: string): string[] => source.split('.');

/** The child of `value` named by one segment: own properties of objects, numeric indices of arrays. */
function child(value: unknown, segment: string): unknown {
  if (Array.isArray(value)) return /^\d+$/.test(segment) ? (value as unknown[])[Number(segment)] : undefined;
  if (isPlainRecord(value) && Object.hasOwn(value, segment)) return value[segment];
  return undefined;
}

/** Every value the path reaches (present ones), at most `limit`; `*` fans out. */
function reach(root: unknown, segments: readonly string[], limit: number): unknown[] {
  const out: unknown[] = [];
  const walk = (value: unknown, i: number): void => {
    if (out.length > limit) return;
    if (i === segments.length) {
      if (value !== undefined) out.push(value);
      return;
    }
    const segment = segments[i] as string;
    if (segment !== '*') {
      walk(child(value, segment), i + 1);
      return;
    }
    if (Array.isArray(value)) for (const v of value as unknown[]) walk(v, i + 1);
    else if (isPlainRecord(value)) for (const v of Object.values(value)) walk(v, i + 1);
  };
  walk(root, 0);
  return out;
}

function parseObject(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return isPlainRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function compileRowErrors(def: RowErrorsDefinition): CompiledRowErrors {
  const errorsPath = segmentsOf(def.errors);
  const indexPath = segmentsOf(def.index);
  const codePath = segmentsOf(def.code);
  const transient = new Set(def.transient);
  return {
    read(body, truncated, size) {
      // Cut at the read limit: the rows listed beyond it are unknown.
      if (truncated) return { kind: 'unreadable' };
      const parsed = parseObject(body);
      if (parsed === undefined) return { kind: 'unreadable' };
      const errors = reach(parsed, errorsPath, MAX_ERRORS);
      if (errors.length === 0) return undefined;
      if (errors.length > MAX_ERRORS) return { kind: 'unreadable' };
      const byRow = new Map<number, RowFailure>();
      for (const error of errors) {
        const [index] = reach(error, indexPath, 1);
        if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= size) return { kind: 'unreadable' };
        const found = reach(error, codePath, 8).find((v): v is string => typeof v === 'string');
        const code = found !== undefined && CODE.test(found) ? found : 'UNKNOWN';
        const failure: RowFailure = { index, code, transient: transient.has(code) };
        const seen = byRow.get(index);
        // A row with several errors is retried only when every one of them is temporary.
        if (seen === undefined) byRow.set(index, failure);
        else if (seen.transient && !failure.transient) byRow.set(index, failure);
      }
      return { kind: 'rows', failures: [...byRow.values()].sort((a, b) => a.index - b.index) };
    },
  };
}
