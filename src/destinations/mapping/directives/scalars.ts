/**
 * `@scalars`: the scalar fields of an object, of one kind: `string` keeps strings and booleans (as
 * "true" / "false"), `number` keeps finite numbers. It is what a query-string protocol needs from a
 * free-form object, e.g. GA4's `ep.<name>` (text) and `epn.<name>` (number) event parameters from
 * `properties`.
 */
import { FORBIDDEN_KEYS, isPlainRecord } from '../../../lib/dotted.ts';
import { checkKeys, compileChild, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

/** Most fields `@scalars` keeps (GA4 takes 25 parameters per event; this bounds a hostile object). */
export const MAX_SCALAR_FIELDS = 100;

interface ScalarsArgs {
  type: 'string' | 'number';
  skip: ReadonlySet<string>;
  limit: number;
  value: Evaluator;
}

function validate(arg: unknown, ctx: CompileContext, at: string): ScalarsArgs | undefined {
  if (!checkKeys(arg, ctx, at, ['value', 'type'], ['omit', 'max'])) return undefined;
  const { type, omit, max } = arg;
  if (type !== 'string' && type !== 'number') return report(ctx, joinPath(at, 'type'), 'expected "string" or "number"');
  if (omit !== undefined && (!Array.isArray(omit) || !omit.every((k) => typeof k === 'string'))) {
    return report(ctx, joinPath(at, 'omit'), 'expected an array of field names');
  }
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_SCALAR_FIELDS)) {
    return report(ctx, joinPath(at, 'max'), `expected an integer from 1 to ${MAX_SCALAR_FIELDS}`);
  }
  const skip = new Set<string>(omit ?? []);
  const limit = max ?? MAX_SCALAR_FIELDS;
  return { type, skip, limit, value: compileChild(ctx, arg.value, joinPath(at, 'value')) };
}

function evaluator({ type, skip, limit, value }: ScalarsArgs): Evaluator {
  return (scope) => {
    const source = value(scope);
    if (!isPlainRecord(source)) return undefined;
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const key of Object.keys(source)) {
      if (n >= limit) break;
      if (skip.has(key) || FORBIDDEN_KEYS.has(key)) continue;
      const v = source[key];
      let kept: unknown;
      if (type === 'number') kept = typeof v === 'number' && Number.isFinite(v) ? v : undefined;
      else kept = typeof v === 'string' ? (v === '' ? undefined : v) : typeof v === 'boolean' ? String(v) : undefined;
      if (kept === undefined) continue;
      out[key] = kept;
      n++;
    }
    return n > 0 ? out : undefined;
  };
}

export const scalars: Directive<ScalarsArgs> = { validate, evaluator };
