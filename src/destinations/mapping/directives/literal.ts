/**
 * `@literal`: its argument, unevaluated, for output that itself has `@` keys (JSON-LD's `@context`)
 * or looks like a mapping. Copied at load and frozen, so no render can alter the template.
 */
import { constant } from '../compile-context.ts';
import type { Directive } from './directive.ts';

export const literal: Directive<{ value: unknown }> = {
  validate: (arg) => ({ value: structuredClone(arg) }),
  evaluator: ({ value }) => constant(value),
};
