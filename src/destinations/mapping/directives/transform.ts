/**
 * `@transform`: `{"fn": name, "value": m}` applies one of the closed set of value transforms
 * (../transforms.ts): epoch seconds for Meta's `event_time`, snake_case names for GA4, and so on.
 */
import { checkKeys, compileChild, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import { applyTransform, TRANSFORMS, type TransformFn } from '../transforms.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

interface TransformArgs {
  fn: TransformFn;
  value: Evaluator;
}

function isTransformFn(fn: unknown): fn is TransformFn {
  return typeof fn === 'string' && (TRANSFORMS as readonly string[]).includes(fn);
}

function validate(arg: unknown, ctx: CompileContext, at: string): TransformArgs | undefined {
  if (!checkKeys(arg, ctx, at, ['fn', 'value'], [])) return undefined;
  const fn = arg.fn;
  if (!isTransformFn(fn)) return report(ctx, joinPath(at, 'fn'), `expected one of ${TRANSFORMS.join(', ')}`);
  return { fn, value: compileChild(ctx, arg.value, joinPath(at, 'value')) };
}

function evaluator({ fn, value }: TransformArgs): Evaluator {
  return (scope) => applyTransform(fn, value(scope));
}

export const transform: Directive<TransformArgs> = { validate, evaluator };
