/**
 * What compiling one mapping carries from node to node, and the helpers every directive uses to
 * check its argument. Problems are collected, never thrown, so a template author sees all of them.
 */
import { isPlainRecord } from '../../lib/dotted.ts';
import { deepFreeze } from '../../lib/freeze.ts';
import { joinPath } from './issue-path.ts';
import type { Evaluator, MappingIssue } from './types.ts';

export interface CompileContext {
  /** Names of the declared settings; reading any other is a load error. */
  readonly settings: ReadonlySet<string>;
  /** Fields of template.json a `{{template.<name>}}` placeholder reads (apiVersion: the one place a version is written). */
  readonly template: Readonly<Record<string, string>>;
  readonly issues: MappingIssue[];
  /** Inside an `@arrayPath` item mapping, `$` is the element, not the event. */
  readonly inArray: boolean;
  readonly depth: number;
  /** Set once a path reader is compiled (every read of the event, `$` or `$$`, goes through one); shared by child contexts. */
  readonly reads: { event: boolean };
  /**
   * The node compiler (compile.ts). Handed down rather than imported, so directives can compile
   * nested mappings while compile.ts imports the directive table without an import cycle.
   */
  readonly compileNode: (node: unknown, ctx: CompileContext, at: string) => Evaluator;
}

export const ABSENT: Evaluator = () => undefined;

/** Evaluators that always return the same (deep-frozen) value, so parents can fold them. */
const constants = new WeakMap<Evaluator, unknown>();

/** An evaluator of one fixed value, frozen so that a render cannot alter the template. */
export function constant(value: unknown): Evaluator {
  const frozen = deepFreeze(value);
  const evaluator: Evaluator = () => frozen;
  constants.set(evaluator, frozen);
  return evaluator;
}

export function isConstant(evaluator: Evaluator): boolean {
  return constants.has(evaluator);
}

/** The value of an evaluator made by `constant`. */
export function constantValue(evaluator: Evaluator): unknown {
  return constants.get(evaluator);
}

/** Record a problem; returns undefined so a directive's check can `return report(…)`. */
export function report(ctx: CompileContext, at: string, message: string): undefined {
  ctx.issues.push({ path: at, message });
  return undefined;
}

/** Compile a nested mapping one level deeper (`inArray` when it is an `@arrayPath` item). */
export function compileChild(ctx: CompileContext, node: unknown, at: string, inArray = ctx.inArray): Evaluator {
  return ctx.compileNode(node, { ...ctx, inArray, depth: ctx.depth + 1 }, at);
}

/** Check an argument object has exactly the allowed keys; report the rest. */
export function checkKeys(
  arg: unknown,
  ctx: CompileContext,
  at: string,
  required: readonly string[],
  optional: readonly string[],
): arg is Record<string, unknown> {
  if (!isPlainRecord(arg)) {
    report(ctx, at, `expected an object with ${[...required, ...optional.map((k) => `${k}?`)].join(', ')}`);
    return false;
  }
  let ok = true;
  for (const key of required) {
    if (!Object.hasOwn(arg, key)) {
      report(ctx, at, `missing "${key}"`);
      ok = false;
    }
  }
  for (const key of Object.keys(arg)) {
    if (!required.includes(key) && !optional.includes(key)) {
      report(ctx, joinPath(at, key), `unknown key "${key}"`);
      ok = false;
    }
  }
  return ok;
}
