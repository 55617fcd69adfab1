/**
 * `@merge`: one object from several, later fields winning. It is for output whose field names are
 * data, such as the item parameters of a GA4 hit (`pr1`, `pr2`, …) next to fixed fields.
 */
import { FORBIDDEN_KEYS, isPlainRecord } from '../../../lib/dotted.ts';
import { compileChild, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

/** Most objects one `@merge` combines. */
export const MAX_MERGE_OBJECTS = 16;

function validate(arg: unknown, ctx: CompileContext, at: string): Evaluator[] | undefined {
  if (!Array.isArray(arg) || arg.length < 1 || arg.length > MAX_MERGE_OBJECTS) {
    return report(ctx, at, `expected an array of 1 to ${MAX_MERGE_OBJECTS} mappings`);
  }
  return arg.map((element, i) => compileChild(ctx, element, joinPath(at, i)));
}

function evaluator(parts: Evaluator[]): Evaluator {
  return (scope) => {
    let out: Record<string, unknown> | undefined;
    for (const part of parts) {
      const value = part(scope);
      if (!isPlainRecord(value)) continue;
      out ??= {};
      for (const key of Object.keys(value)) {
        // Keys here come from data: `__proto__` would set the prototype, not a field.
        if (!FORBIDDEN_KEYS.has(key) && value[key] !== undefined) out[key] = value[key];
      }
    }
    return out;
  };
}

export const merge: Directive<Evaluator[]> = { validate, evaluator };
