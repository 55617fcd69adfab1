/**
 * `@setting`: `"name"` reads a declared setting of the destination (a pixel id, a token). Settings
 * are declared by the template, so a misspelt name is a load error rather than a silently empty
 * field; an unset or empty setting is absent like any other value.
 */
import { ABSENT, report, type CompileContext } from '../compile-context.ts';
import { isPresent } from '../present.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

function declared(name: string, ctx: CompileContext, at: string): string | undefined {
  return ctx.settings.has(name) ? name : report(ctx, at, `undeclared setting "${name}"`);
}

function settingReader(name: string): Evaluator {
  return (scope) => {
    const value = Object.hasOwn(scope.settings, name) ? scope.settings[name] : undefined;
    return isPresent(value) ? value : undefined;
  };
}

/** A reader of one setting, as `@path` (`$.settings.<name>`) and `{{settings.<name>}}` read it too. */
export function compileSettingRead(name: string, ctx: CompileContext, at: string): Evaluator {
  return declared(name, ctx, at) === undefined ? ABSENT : settingReader(name);
}

export const setting: Directive<string> = {
  validate: (arg, ctx, at) => (typeof arg === 'string' ? declared(arg, ctx, at) : report(ctx, at, 'expected the name of a setting')),
  evaluator: settingReader,
};
