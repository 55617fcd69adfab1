/**
 * `@arrayPath`: `[path, itemMapping]` maps each element of a list (an order's products into Meta's
 * `contents`, GA4's `items`). Inside the item mapping `$` is the element and `$$` the event; at most
 * MAX_ARRAY_ITEMS elements are mapped, and a list with nothing left is absent.
 */
import { compileChild, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import { MAX_ARRAY_ITEMS } from '../limits.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';
import { path } from './path.ts';

interface ArrayPathArgs {
  source: Evaluator;
  item: Evaluator;
}

function validate(arg: unknown, ctx: CompileContext, at: string): ArrayPathArgs | undefined {
  if (!Array.isArray(arg) || arg.length !== 2) return report(ctx, at, 'expected [path, itemMapping]');
  const spec = path.validate(arg[0], ctx, joinPath(at, 0));
  const item = compileChild(ctx, arg[1], joinPath(at, 1), true);
  return spec === undefined ? undefined : { source: path.evaluator(spec), item };
}

function evaluator({ source, item }: ArrayPathArgs): Evaluator {
  return (scope) => {
    const list = source(scope);
    if (!Array.isArray(list)) return undefined;
    const out: unknown[] = [];
    const n = Math.min(list.length, MAX_ARRAY_ITEMS);
    for (let i = 0; i < n; i++) {
      const value = item({ root: scope.root, current: list[i], settings: scope.settings });
      if (value !== undefined) out.push(value);
    }
    return out.length > 0 ? out : undefined;
  };
}

export const arrayPath: Directive<ArrayPathArgs> = { validate, evaluator };
