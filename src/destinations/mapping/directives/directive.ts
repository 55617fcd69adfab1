import type { CompileContext } from '../compile-context.ts';
import type { Evaluator } from '../types.ts';

/**
 * One `@` directive of the closed mapping language. Both halves run once, at template load: the
 * check reports every problem with its JSON path (and compiles nested mappings), and the evaluator
 * it builds is all that runs per event.
 */
export interface Directive<Args> {
  /** The checked argument, or undefined once a problem has been reported. */
  readonly validate: (arg: unknown, ctx: CompileContext, at: string) => Args | undefined;
  /** The closure that evaluates the directive for checked arguments; it never throws on JSON input. */
  readonly evaluator: (args: Args) => Evaluator;
}
