/**
 * `@if`: `{"exists": m, "then": m, "else"?: m}` or `{"equals": [m, m], …}`, for the fields a vendor
 * wants only in some cases (a value for a purchase, an id when the user is known). Exactly one
 * condition, so a template never has to guess which one wins.
 */
import { isPlainRecord } from '../../../lib/dotted.ts';
import { ABSENT, checkKeys, compileChild, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import { isPresent } from '../present.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

interface IfArgs {
  condition: { exists: Evaluator } | { equals: [Evaluator, Evaluator] };
  then: Evaluator;
  otherwise: Evaluator;
}

/** Structural equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isPlainRecord(a) && isPlainRecord(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function validate(arg: unknown, ctx: CompileContext, at: string): IfArgs | undefined {
  if (!checkKeys(arg, ctx, at, ['then'], ['exists', 'equals', 'else'])) return undefined;
  const hasExists = Object.hasOwn(arg, 'exists');
  const hasEquals = Object.hasOwn(arg, 'equals');
  if (hasExists === hasEquals) return report(ctx, at, 'give exactly one condition: "exists" or "equals"');
  const then = compileChild(ctx, arg.then, joinPath(at, 'then'));
  const otherwise = Object.hasOwn(arg, 'else') ? compileChild(ctx, arg.else, joinPath(at, 'else')) : ABSENT;
  if (hasExists) return { condition: { exists: compileChild(ctx, arg.exists, joinPath(at, 'exists')) }, then, otherwise };
  const pair = arg.equals;
  const equalsAt = joinPath(at, 'equals');
  if (!Array.isArray(pair) || pair.length !== 2) return report(ctx, equalsAt, 'expected [mapping, mapping]');
  const left = compileChild(ctx, pair[0], joinPath(equalsAt, 0));
  const right = compileChild(ctx, pair[1], joinPath(equalsAt, 1));
  return { condition: { equals: [left, right] }, then, otherwise };
}

function evaluator({ condition, then, otherwise }: IfArgs): Evaluator {
  if ('exists' in condition) {
    const subject = condition.exists;
    return (scope) => (isPresent(subject(scope)) ? then(scope) : otherwise(scope));
  }
  const [left, right] = condition.equals;
  return (scope) => {
    const a = left(scope);
    const b = right(scope);
    // Absent equals nothing, not even absent: a missing field must never look like a match.
    return a !== undefined && b !== undefined && jsonEqual(a, b) ? then(scope) : otherwise(scope);
  };
}

export const ifDirective: Directive<IfArgs> = { validate, evaluator };
