/**
 * `@path`: `"$.a.b"` or a list of fallback paths, the first present value winning (how one field is
 * taken from whichever of `properties`, `traits` or `context` carries it). The path syntax is in
 * ../path.ts; `$.settings.<name>` at the event level reads a setting instead of the event.
 */
import { report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import { parsePath, readSegments } from '../path.ts';
import { isPresent } from '../present.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';
import { compileSettingRead } from './setting.ts';

/** Most fallbacks in one `@path` list. */
export const MAX_PATH_FALLBACKS = 16;

/** One path to a reader (not yet filtered for presence), or undefined once its problem is reported. */
export function compileReader(source: string, ctx: CompileContext, at: string): Evaluator | undefined {
  const parsed = parsePath(source);
  if ('error' in parsed) return report(ctx, at, parsed.error);
  const atEvent = parsed.base === 'root' || !ctx.inArray;
  if (atEvent && parsed.segments[0] === 'settings') {
    const name = parsed.segments[1];
    if (parsed.segments.length !== 2 || typeof name !== 'string') {
      return report(ctx, at, `path "${source}": settings are read as $.settings.<name>`);
    }
    return compileSettingRead(name, ctx, at);
  }
  const segments = parsed.segments;
  ctx.reads.event = true;
  if (parsed.base === 'root') return (scope) => readSegments(scope.root, segments);
  return (scope) => readSegments(scope.current, segments);
}

/** A single path, or an ordered list of fallbacks. */
type PathSpec = { single: Evaluator } | { fallbacks: Evaluator[] };

function validate(arg: unknown, ctx: CompileContext, at: string): PathSpec | undefined {
  if (typeof arg === 'string') {
    const reader = compileReader(arg, ctx, at);
    return reader === undefined ? undefined : { single: reader };
  }
  if (!Array.isArray(arg) || arg.length === 0 || arg.length > MAX_PATH_FALLBACKS) {
    return report(ctx, at, `expected a path string or a list of 1..${MAX_PATH_FALLBACKS} path strings`);
  }
  const readers: Evaluator[] = [];
  arg.forEach((source, i) => {
    if (typeof source !== 'string') {
      report(ctx, joinPath(at, i), 'expected a path string');
      return;
    }
    const reader = compileReader(source, ctx, joinPath(at, i));
    if (reader !== undefined) readers.push(reader);
  });
  return readers.length === arg.length ? { fallbacks: readers } : undefined;
}

function evaluator(spec: PathSpec): Evaluator {
  if ('single' in spec) {
    const reader = spec.single;
    return (scope) => {
      const value = reader(scope);
      return isPresent(value) ? value : undefined;
    };
  }
  const readers = spec.fallbacks;
  return (scope) => {
    for (const reader of readers) {
      const value = reader(scope);
      if (isPresent(value)) return value;
    }
    return undefined;
  };
}

/** Also the list reader of `@arrayPath`, which takes the same path or fallbacks. */
export const path: Directive<PathSpec> = { validate, evaluator };
