/**
 * `@template`: text with `{{settings.<name>}}`, `{{template.apiVersion}}` and `{{$ path}}` placeholders, for URLs and headers
 * built from settings and event fields. Values are URL-encoded unless `encode: false` (an
 * `Authorization` header), and one absent or non-scalar placeholder makes the whole text absent:
 * a URL with a hole in it must not be sent.
 */
import { checkKeys, report, type CompileContext } from '../compile-context.ts';
import { joinPath } from '../issue-path.ts';
import { isPresent } from '../present.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';
import { compileReader } from './path.ts';
import { compileSettingRead } from './setting.ts';

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

interface TemplateArgs {
  /** Literal text and placeholder readers, in order, empty text left out. */
  pieces: Array<string | Evaluator>;
  encode: boolean;
}

function validate(arg: unknown, ctx: CompileContext, at: string): TemplateArgs | undefined {
  let text: string;
  let encode = true;
  if (typeof arg === 'string') {
    text = arg;
  } else {
    if (!checkKeys(arg, ctx, at, ['text'], ['encode'])) return undefined;
    if (typeof arg.text !== 'string') return report(ctx, joinPath(at, 'text'), 'expected a string');
    if (arg.encode !== undefined && typeof arg.encode !== 'boolean') return report(ctx, joinPath(at, 'encode'), 'expected a boolean');
    text = arg.text;
    encode = arg.encode !== false;
  }
  const parts: Array<string | Evaluator> = [];
  let last = 0;
  let ok = true;
  for (const match of text.matchAll(PLACEHOLDER)) {
    const literal = text.slice(last, match.index);
    if (literal.includes('{{') || literal.includes('}}')) {
      ok = false;
      report(ctx, at, `unbalanced braces in template "${text}"`);
    }
    parts.push(literal);
    const expression = (match[1] ?? '').trim();
    let reader: Evaluator | undefined;
    if (expression.startsWith('settings.')) {
      reader = compileSettingRead(expression.slice('settings.'.length), ctx, at);
    } else if (expression.startsWith('template.')) {
      // A field of template.json itself (apiVersion), so the version is written once and the URL reads it.
      const name = expression.slice('template.'.length);
      const value = Object.hasOwn(ctx.template, name) ? ctx.template[name] : undefined;
      if (value === undefined) report(ctx, at, `placeholder {{${expression}}}: the template declares no ${name} (known: ${Object.keys(ctx.template).join(', ') || 'none'})`);
      else reader = () => value;
    } else if (expression.startsWith('$')) {
      reader = compileReader(expression, ctx, at);
    } else {
      report(ctx, at, `placeholder {{${expression}}} must be settings.<name>, template.apiVersion or a $ path`);
    }
    if (reader === undefined) ok = false;
    else parts.push(reader);
    last = match.index + match[0].length;
  }
  const tail = text.slice(last);
  if (tail.includes('{{') || tail.includes('}}')) {
    ok = false;
    report(ctx, at, `unbalanced braces in template "${text}"`);
  }
  parts.push(tail);
  if (!ok) return undefined;
  return { pieces: parts.filter((p) => p !== ''), encode };
}

function evaluator({ pieces, encode }: TemplateArgs): Evaluator {
  return (scope) => {
    let out = '';
    for (const piece of pieces) {
      if (typeof piece === 'string') {
        out += piece;
        continue;
      }
      const value = piece(scope);
      if (!isPresent(value)) return undefined;
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
      out += encode ? encodeURIComponent(String(value)) : String(value);
    }
    return out;
  };
}

export const template: Directive<TemplateArgs> = { validate, evaluator };
