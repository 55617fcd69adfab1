/**
 * `@hash`: `{"kind": k, "value": m, "country"?: m}` normalises and SHA-256es customer information
 * (../normalize.ts, ../hash.ts), as Meta's Conversions API requires of `user_data`:
 * https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
 */
import { checkKeys, compileChild, report, type CompileContext } from '../compile-context.ts';
import { hashValue } from '../hash.ts';
import { joinPath } from '../issue-path.ts';
import { HASH_KINDS, type HashKind } from '../normalize.ts';
import type { Evaluator } from '../types.ts';
import type { Directive } from './directive.ts';

interface HashArgs {
  kind: HashKind;
  value: Evaluator;
  country?: Evaluator;
}

function isHashKind(kind: unknown): kind is HashKind {
  return typeof kind === 'string' && (HASH_KINDS as readonly string[]).includes(kind);
}

function validate(arg: unknown, ctx: CompileContext, at: string): HashArgs | undefined {
  if (!checkKeys(arg, ctx, at, ['kind', 'value'], ['country'])) return undefined;
  const kind = arg.kind;
  if (!isHashKind(kind)) return report(ctx, joinPath(at, 'kind'), `expected one of ${HASH_KINDS.join(', ')}`);
  const value = compileChild(ctx, arg.value, joinPath(at, 'value'));
  if (!Object.hasOwn(arg, 'country')) return { kind, value };
  // Only a phone number reads differently by country (its calling code and trunk prefix).
  if (kind !== 'phone' && kind !== 'googlePhone') return report(ctx, joinPath(at, 'country'), '"country" applies to kinds "phone" and "googlePhone" only');
  return { kind, value, country: compileChild(ctx, arg.country, joinPath(at, 'country')) };
}

function evaluator({ kind, value, country }: HashArgs): Evaluator {
  if (country === undefined) return (scope) => hashValue(kind, value(scope));
  return (scope) => {
    const code = country(scope);
    return hashValue(kind, value(scope), typeof code === 'string' ? { country: code } : {});
  };
}

export const hashDirective: Directive<HashArgs> = { validate, evaluator };
