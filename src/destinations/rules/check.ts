/**
 * A template's vendor rules (`rules` in template.json, docs/templates.md "Vendor rules"): the limits
 * its vendor documents, checked on the rendered event before it is batched. Some vendors accept and
 * silently discard what breaks them (GA4's Measurement Protocol answers 2xx to everything), others
 * reject a whole batch for one bad event (Meta): either way the event is better dropped here, with
 * the rule's id as its reason, than sent. Pure: no clock (a time window is measured against the
 * event's own `receivedAt`), no I/O, and never throws on any JSON input.
 */
import { isPlainRecord } from '../../lib/dotted.ts';
import { isPresent } from '../mapping/present.ts';
import type { VendorCheckDefinition, VendorRulesDefinition } from '../template-schema.ts';

/** Which check failed and where (a concrete path, `*` resolved; no value: it may be personal data). */
export interface VendorRuleFailure {
  rule: string;
  path: string;
}

/** A path of a rule: into the envelope or the item, its segments (`*` = every key or element). */
interface RulePath {
  target: 'item' | 'envelope';
  segments: string[];
}

/** A field a path reached, with its concrete path as the template would write it. */
interface Reached {
  path: string;
  value: unknown;
}

type Check = (envelope: Record<string, unknown>, item: Record<string, unknown>, receivedAtMs: number) => VendorRuleFailure | undefined;

export interface CompiledVendorRules {
  /** The first failing check, or undefined when the rendered event keeps every rule. */
  check(envelope: Record<string, unknown>, item: Record<string, unknown>, receivedAtMs: number): VendorRuleFailure | undefined;
}

/**
 * Most fields one wildcard path visits: a hostile event cannot make a check walk without end. More
 * fail the check (closed): what was not looked at cannot be said to keep the rule.
 */
const MAX_REACHED = 10_000;

/** The marker of a walk that stopped at MAX_REACHED. */
const TRUNCATED: Reached = Object.freeze({ path: '', value: Symbol('truncated') });

function parseRulePath(source: string): RulePath {
  const segments = source.split('.');
  if (segments[0] === 'envelope' && segments.length > 1) return { target: 'envelope', segments: segments.slice(1) };
  return { target: 'item', segments };
}

/** Every field the path reaches, present ones only; `*` fans out over an object's keys or an array's elements. */
function reach(root: unknown, segments: readonly string[], prefix: string): Reached[] {
  const out: Reached[] = [];
  walk(out, segments, root, 0, prefix);
  return out;
}

/**
 * reach's recursion. A function of its own with plain loops, not a closure with forEach and
 * Object.entries: it runs for every check of every rendered event (GA4's nine per event), and the
 * closures and entry arrays made per call were most of what a check cost.
 */
function walk(out: Reached[], segments: readonly string[], value: unknown, index: number, path: string): void {
  if (out[out.length - 1] === TRUNCATED) return;
  if (index === segments.length) {
    if (value !== undefined) out.push(out.length === MAX_REACHED ? TRUNCATED : { path, value });
    return;
  }
  const segment = segments[index] as string;
  const dot = path === '' ? '' : `${path}.`;
  if (segment === '*') {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) walk(out, segments, value[i], index + 1, `${dot}${i}`);
    } else if (isPlainRecord(value)) {
      for (const k of Object.keys(value)) walk(out, segments, value[k], index + 1, `${dot}${k}`);
    }
    return;
  }
  if (isPlainRecord(value) && Object.hasOwn(value, segment)) walk(out, segments, value[segment], index + 1, `${dot}${segment}`);
}

/** Characters as vendors count them: code points, not UTF-16 units. */
function length(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * `length(text) <= max`, counting only when it can matter: a text has at most as many code points
 * as UTF-16 units, so one no longer than `max` in units keeps the limit uncounted.
 */
function withinLength(text: string, max: number): boolean {
  return text.length <= max || length(text) <= max;
}

interface NameRules {
  pattern?: string | undefined;
  maxLength?: number | undefined;
  reserved?: readonly string[] | undefined;
  reservedPrefixes?: readonly string[] | undefined;
}

/** A predicate over names (event names, parameter keys): true when the name keeps the rules. */
function nameTest(rules: NameRules): (name: string) => boolean {
  const regex = rules.pattern === undefined ? undefined : new RegExp(rules.pattern, 'u');
  const reserved = new Set(rules.reserved ?? []);
  const prefixes = rules.reservedPrefixes ?? [];
  return (name) =>
    (regex === undefined || regex.test(name)) &&
    (rules.maxLength === undefined || withinLength(name, rules.maxLength)) &&
    !reserved.has(name) &&
    !prefixes.some((p) => name.startsWith(p));
}

const UNIT_MS = { seconds: 1000, millis: 1, micros: 0.001 } as const;

function timeOf(value: unknown, unit: keyof typeof UNIT_MS): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  return Number.isFinite(n) ? n * UNIT_MS[unit] : undefined;
}

function compileCheck(def: VendorCheckDefinition): Check {
  const { target, segments } = parseRulePath(def.path);
  const prefix = target === 'envelope' ? 'envelope' : '';
  const fail = (path: string): VendorRuleFailure => ({ rule: def.id, path });
  const fields = (envelope: Record<string, unknown>, item: Record<string, unknown>): Reached[] => reach(target === 'envelope' ? envelope : item, segments, prefix);
  const inner = compileKind(def, fail);
  return (envelope, item, receivedAtMs) => {
    const reached = fields(envelope, item);
    // A walk cut short fails its check: the rest was never looked at.
    if (reached[reached.length - 1] === TRUNCATED) return fail(def.path);
    return inner(reached, envelope, item, receivedAtMs);
  };
}

type KindCheck = (reached: readonly Reached[], envelope: Record<string, unknown>, item: Record<string, unknown>, receivedAtMs: number) => VendorRuleFailure | undefined;

function compileKind(def: VendorCheckDefinition, fail: (path: string) => VendorRuleFailure): KindCheck {
  switch (def.kind) {
    case 'name': {
      const ok = nameTest(def);
      return (reached) => {
        for (const f of reached) if (typeof f.value !== 'string' || !ok(f.value)) return fail(f.path);
        return undefined;
      };
    }
    case 'keys': {
      const ok = nameTest(def);
      return (reached) => {
        for (const f of reached) {
          if (!isPlainRecord(f.value)) continue;
          const keys = Object.keys(f.value);
          if (def.maxCount !== undefined && keys.length > def.maxCount) return fail(f.path);
          const bad = keys.find((k) => !ok(k));
          if (bad !== undefined) return fail(f.path === '' ? bad : `${f.path}.${bad}`);
        }
        return undefined;
      };
    }
    case 'maxLength': {
      const except = new Map(Object.entries(def.except ?? {}));
      return (reached) => {
        for (const f of reached) {
          if (typeof f.value !== 'string') continue;
          // Without exceptions the path is not looked up (hashing it is most of the cost).
          const max = except.size === 0 ? def.max : (except.get(f.path) ?? def.max);
          if (!withinLength(f.value, max)) return fail(f.path);
        }
        return undefined;
      };
    }
    case 'timeWindow':
      return (reached, _envelope, _item, receivedAtMs) => {
        // Without a readable receive time there is nothing to measure against.
        if (!Number.isFinite(receivedAtMs)) return undefined;
        for (const f of reached) {
          const at = timeOf(f.value, def.unit);
          if (at === undefined) return fail(f.path);
          if (def.maxAgeSeconds !== undefined && receivedAtMs - at > def.maxAgeSeconds * 1000) return fail(f.path);
          if (def.maxFutureSeconds !== undefined && at - receivedAtMs > def.maxFutureSeconds * 1000) return fail(f.path);
        }
        return undefined;
      };
    case 'oneOf': {
      const values = new Set<unknown>(def.values);
      return (reached) => {
        for (const f of reached) if (!values.has(f.value)) return fail(f.path);
        return undefined;
      };
    }
    case 'requiredWhen': {
      const when = parseRulePath(def.when.path);
      const equals = new Set<unknown>(def.when.equals);
      const whenPrefix = when.target === 'envelope' ? 'envelope' : '';
      return (reached, envelope, item) => {
        const conditions = reach(when.target === 'envelope' ? envelope : item, when.segments, whenPrefix);
        if (!conditions.some((c) => equals.has(c.value))) return undefined;
        const present = reached.some((f) => isPresent(f.value));
        return present ? undefined : fail(def.path);
      };
    }
    case 'maxItems':
      return (reached) => {
        for (const f of reached) if (Array.isArray(f.value) && f.value.length > def.max) return fail(f.path);
        return undefined;
      };
    case 'exactlyOne': {
      const others = def.others.map(parseRulePath);
      return (reached, envelope, item) => {
        let count = reached.some((f) => isPresent(f.value)) ? 1 : 0;
        for (const other of others) {
          const root = other.target === 'envelope' ? envelope : item;
          if (reach(root, other.segments, other.target === 'envelope' ? 'envelope' : '').some((f) => isPresent(f.value))) count++;
        }
        return count === 1 ? undefined : fail(def.path);
      };
    }
    case 'absentWhen': {
      const whens = def.when.paths.map(parseRulePath);
      return (reached, envelope, item) => {
        const fired = whens.some((w) => reach(w.target === 'envelope' ? envelope : item, w.segments, w.target === 'envelope' ? 'envelope' : '').some((f) => isPresent(f.value)));
        if (!fired) return undefined;
        const present = reached.find((f) => isPresent(f.value));
        return present === undefined ? undefined : fail(present.path);
      };
    }
  }
}

/** Compile a template's `rules.checks` once, at load; checks run in the order the template lists them. */
export function compileVendorRules(def: VendorRulesDefinition): CompiledVendorRules {
  const checks = (def.checks ?? []).map(compileCheck);
  return {
    check(envelope, item, receivedAtMs) {
      for (const check of checks) {
        const failure = check(envelope, item, receivedAtMs);
        if (failure !== undefined) return failure;
      }
      return undefined;
    },
  };
}

