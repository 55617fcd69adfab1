/**
 * The closed set of `@` directives, in one table: a mapping may use these and nothing else (any
 * other `@` key is a load error). Adding a directive is a file in this folder, one line here, and
 * its section in docs/templates.md (docs.test.ts checks that every directive has one).
 */
import { ABSENT, type CompileContext } from '../compile-context.ts';
import type { Evaluator } from '../types.ts';
import { arrayPath } from './array-path.ts';
import type { Directive } from './directive.ts';
import { hashDirective } from './hash.ts';
import { ifDirective } from './if.ts';
import { literal } from './literal.ts';
import { lookup } from './lookup.ts';
import { merge } from './merge.ts';
import { path } from './path.ts';
import { scalars } from './scalars.ts';
import { setting } from './setting.ts';
import { template } from './template.ts';
import { transform } from './transform.ts';

type CompileDirective = (arg: unknown, ctx: CompileContext, at: string) => Evaluator;

function compiler<Args>(directive: Directive<Args>): CompileDirective {
  return (arg, ctx, at) => {
    const args = directive.validate(arg, ctx, at);
    return args === undefined ? ABSENT : directive.evaluator(args);
  };
}

const TABLE = {
  '@path': compiler(path),
  '@setting': compiler(setting),
  '@template': compiler(template),
  '@if': compiler(ifDirective),
  '@arrayPath': compiler(arrayPath),
  '@hash': compiler(hashDirective),
  '@transform': compiler(transform),
  '@scalars': compiler(scalars),
  '@merge': compiler(merge),
  '@lookup': compiler(lookup),
  '@literal': compiler(literal),
} satisfies Record<`@${string}`, CompileDirective>;

export type DirectiveName = keyof typeof TABLE;

/** The directive names, in the order docs/templates.md presents them. */
export const DIRECTIVES = Object.keys(TABLE) as DirectiveName[];

/** The compiler of directive `name`, or undefined when the language has no such directive. */
export function directiveCompiler(name: string): CompileDirective | undefined {
  return Object.hasOwn(TABLE, name) ? TABLE[name as DirectiveName] : undefined;
}
