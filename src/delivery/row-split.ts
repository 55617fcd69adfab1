/**
 * What becomes of each row of a batch the vendor answered 2xx with some rows failed (a template's
 * `rowErrors`, src/destinations/row-errors.ts): the rows not listed are delivered, a row with a
 * final code gives up with it (grouped by code, one dead letter per code), a row with a transient
 * code goes to the retry policy. Pure: the scheduler carries it out.
 */
import type { RowFailure } from '../destinations/row-errors.ts';

export interface RowSplit {
  /** Indices of the rows the vendor took, ascending. */
  delivered: number[];
  /** Code → indices of the rows that failed for good with it, ascending. */
  rejected: Map<string, number[]>;
  /** Indices of the rows that may be taken later, ascending. */
  transient: number[];
}

/** Splits rows 0..size-1 by the failures (indices outside the batch are ignored: the reader refuses them). */
export function splitRows(size: number, failures: readonly RowFailure[]): RowSplit {
  const failed = new Map<number, RowFailure>();
  for (const f of failures) if (f.index >= 0 && f.index < size) failed.set(f.index, f);
  const split: RowSplit = { delivered: [], rejected: new Map(), transient: [] };
  for (let i = 0; i < size; i++) {
    const f = failed.get(i);
    if (f === undefined) split.delivered.push(i);
    else if (f.transient) split.transient.push(i);
    else {
      const rows = split.rejected.get(f.code);
      if (rows === undefined) split.rejected.set(f.code, [i]);
      else rows.push(i);
    }
  }
  return split;
}
