/**
 * The compiler of the closed mapping language of destination templates (docs/templates.md is its
 * reference). A mapping is JSON: literals map to themselves, and an object whose only key starts
 * with `@` is a directive (directives/index.ts lists them, one file each). Mappings are compiled
 * once, at template load, into a tree of closures: every problem (unknown directive, bad path,
 * undeclared setting) is found then, with its JSON path, and rendering on the ingest hot path only
 * walks closures. Evaluation never throws on any JSON input: a value that cannot be read or
 * converted is *absent* (`undefined`), and absent fields are left out of objects.
 */
import { isPlainRecord } from '../../lib/dotted.ts';
import { ABSENT, compileChild, constant, constantValue, isConstant, report, type CompileContext } from './compile-context.ts';
import { DIRECTIVES, directiveCompiler } from './directives/index.ts';
import { joinPath } from './issue-path.ts';
import type { Evaluator, MappingIssue } from './types.ts';

/** Deepest nesting of a mapping, so a hostile template cannot exhaust the stack at render. */
export const MAX_MAPPING_DEPTH = 64;

export interface CompiledMapping {
  /** Empty when the mapping is valid; otherwise `evaluate` must not be relied on. */
  readonly issues: readonly MappingIssue[];
  /**
   * False when no part of the mapping reads the event (only literals and settings): its value is
   * then the same for every event, so a caller may evaluate it once per bound destination.
   */
  readonly readsEvent: boolean;
  /** Evaluate against `root` (the event: `$`) and the bound settings. Never throws on JSON input. */
  evaluate(root: unknown, settings?: Readonly<Record<string, unknown>>): unknown;
}

export interface CompileOptions {
  /** Names of declared settings; `@setting` and `{{settings.x}}` must name one of them. */
  settings?: Iterable<string>;
  /** JSON path of the mapping inside its file, prefixed to issue paths. */
  at?: string;
  /** Fields of template.json `{{template.<name>}}` may read (`apiVersion`); request mappings only. */
  template?: Readonly<Record<string, string>>;
}

/** Compile a mapping once; collect every problem rather than stopping at the first. */
export function compileMapping(mapping: unknown, options: CompileOptions = {}): CompiledMapping {
  const ctx: CompileContext = {
    settings: new Set(options.settings ?? []),
    template: options.template ?? {},
    issues: [],
    inArray: false,
    depth: 0,
    reads: { event: false },
    compileNode,
  };
  const evaluator = compileNode(mapping, ctx, options.at ?? '');
  const noSettings: Readonly<Record<string, unknown>> = {};
  return {
    issues: ctx.issues,
    readsEvent: ctx.reads.event,
    evaluate: (root, settings = noSettings) => evaluator({ root, current: root, settings }),
  };
}

function invalid(ctx: CompileContext, at: string, message: string): Evaluator {
  report(ctx, at, message);
  return ABSENT;
}

function compileNode(node: unknown, ctx: CompileContext, at: string): Evaluator {
  if (ctx.depth > MAX_MAPPING_DEPTH) return invalid(ctx, at, `mapping nested deeper than ${MAX_MAPPING_DEPTH} levels`);
  if (node === null || typeof node === 'string' || typeof node === 'boolean') return constant(node);
  if (typeof node === 'number') {
    return Number.isFinite(node) ? constant(node) : invalid(ctx, at, 'numbers must be finite');
  }
  if (Array.isArray(node)) return compileArray(node, ctx, at);
  if (isPlainRecord(node)) {
    const keys = Object.keys(node);
    if (keys.some((k) => k.startsWith('@'))) {
      if (keys.length !== 1) {
        return invalid(ctx, at, `a directive must be the only key of its object (found ${keys.join(', ')}); use {"@literal": …} for literal @ keys`);
      }
      const key = keys[0] as string;
      const compile = directiveCompiler(key);
      if (compile === undefined) return invalid(ctx, at, `unknown directive ${key} (known: ${DIRECTIVES.join(', ')})`);
      return compile(node[key], ctx, joinPath(at, key));
    }
    return compileObject(node, keys, ctx, at);
  }
  return invalid(ctx, at, 'not a JSON value');
}

function compileArray(node: unknown[], ctx: CompileContext, at: string): Evaluator {
  const items = node.map((element, i) => compileChild(ctx, element, joinPath(at, i)));
  if (items.every(isConstant)) return constant(items.map(constantValue));
  return (scope) => {
    const out: unknown[] = [];
    for (const item of items) {
      const value = item(scope);
      if (value !== undefined) out.push(value);
    }
    return out;
  };
}

function compileObject(node: Record<string, unknown>, keys: string[], ctx: CompileContext, at: string): Evaluator {
  const fields: Array<[string, Evaluator]> = [];
  for (const key of keys) {
    // Output keys are static; refusing `__proto__` here is what keeps assignment below safe.
    if (key === '__proto__') {
      report(ctx, joinPath(at, key), 'the key "__proto__" is not allowed');
      continue;
    }
    fields.push([key, compileChild(ctx, node[key], joinPath(at, key))]);
  }
  if (fields.every(([, e]) => isConstant(e))) {
    const value: Record<string, unknown> = {};
    for (const [key, e] of fields) value[key] = constantValue(e);
    return constant(value);
  }
  return (scope) => {
    const out: Record<string, unknown> = {};
    for (const [key, field] of fields) {
      const value = field(scope);
      if (value !== undefined) out[key] = value;
    }
    return out;
  };
}
