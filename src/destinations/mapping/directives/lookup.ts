/**
 * `@lookup`: `{"table": {"Order Completed": "Purchase", …}, "value": m, "default"?: m,
 * "ignoreCase"?: bool}` translates a value through a literal table. It is how templates map one
 * vendor's event names onto another's (Segment e-commerce and GA4 names onto Meta's standard
 * events, https://developers.facebook.com/docs/meta-pixel/reference) as data. The table lives in a
 * Map built at load, so keys such as `__proto__` or `toString` are only ever the table's own
 * entries, never inherited properties.
 */
import { isPlainRecord } from '../../../lib/dotted.ts';
import { deepFreeze } from '../../../lib/freeze.ts';
import { ABSENT, checkKeys, compileChild, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

/** Most entries in one `@lookup` table. */
export const MAX_LOOKUP_ENTRIES = 1000;
/** Longest text `@lookup` looks up; a longer value is no key of any table, so it is not even folded. */
export const MAX_LOOKUP_KEY_LENGTH = 200;

interface LookupArgs {
  entries: ReadonlyMap<string, unknown>;
  fold: boolean;
  value: Evaluator;
  otherwise: Evaluator;
}

function validate(arg: unknown, ctx: CompileContext, at: string): LookupArgs | undefined {
  if (!checkKeys(arg, ctx, at, ['table', 'value'], ['default', 'ignoreCase'])) return undefined;
  const { table, ignoreCase } = arg;
  const tableAt = joinPath(at, 'table');
  if (!isPlainRecord(table)) return report(ctx, tableAt, 'expected an object of key → literal value');
  const keys = Object.keys(table);
  if (keys.length === 0 || keys.length > MAX_LOOKUP_ENTRIES) return report(ctx, tableAt, `expected 1 to ${MAX_LOOKUP_ENTRIES} entries`);
  if (ignoreCase !== undefined && typeof ignoreCase !== 'boolean') return report(ctx, joinPath(at, 'ignoreCase'), 'expected a boolean');
  const fold = ignoreCase === true;
  const entries = new Map<string, unknown>();
  let ok = true;
  for (const key of keys) {
    const entryAt = joinPath(tableAt, key);
    const folded = fold ? key.toLowerCase() : key;
    const value = table[key];
    if (key.length > MAX_LOOKUP_KEY_LENGTH) {
      ok = false;
      report(ctx, entryAt, `keys are at most ${MAX_LOOKUP_KEY_LENGTH} characters`);
    } else if (entries.has(folded)) {
      ok = false;
      report(ctx, entryAt, 'duplicate key (keys are compared ignoring case)');
    } else if (value === null || value === undefined || value === '' || (typeof value === 'number' && !Number.isFinite(value))) {
      // An entry that maps to "absent" would be indistinguishable from a miss; say so at load.
      ok = false;
      report(ctx, entryAt, 'a table value must be present (not null or ""); leave the key out to fall back to "default"');
    } else {
      entries.set(folded, deepFreeze(structuredClone(value)));
    }
  }
  const value = compileChild(ctx, arg.value, joinPath(at, 'value'));
  const otherwise = Object.hasOwn(arg, 'default') ? compileChild(ctx, arg.default, joinPath(at, 'default')) : ABSENT;
  return ok ? { entries, fold, value, otherwise } : undefined;
}

function evaluator({ entries, fold, value, otherwise }: LookupArgs): Evaluator {
  return (scope) => {
    const key = value(scope);
    if (typeof key === 'string' && key.length <= MAX_LOOKUP_KEY_LENGTH) {
      const hit = entries.get(fold ? key.toLowerCase() : key);
      if (hit !== undefined) return hit;
    }
    return otherwise(scope);
  };
}

export const lookup: Directive<LookupArgs> = { validate, evaluator };
