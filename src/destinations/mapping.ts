/**
 * The closed mapping language of destination templates (docs/templates.md is its reference).
 *
 * A mapping is JSON. Literals map to themselves; an object whose only key starts with `@` is a
 * directive. Mappings are compiled once, at template load, into a tree of closures: every problem
 * (unknown directive, bad path, undeclared setting) is found then, with its JSON path, and rendering
 * on the ingest hot path only walks closures. Evaluation never throws on any JSON input: a value that
 * cannot be read or converted is *absent* (`undefined`), and absent fields are left out of objects.
 */
import { hash } from 'node:crypto';
import { isSha256Hex, sha256Digest } from '../ingest/digest.ts';
import { isIPv4, isIPv6 } from 'node:net';
import { birthDate, countryCode, phoneDigits, usStateCode } from './customer-info.ts';
import { FORBIDDEN_KEYS, isPlainRecord } from '../lib/dotted.ts';

/** Most segments in a `$` path. */
export const MAX_PATH_DEPTH = 32;
/** Most elements `@arrayPath` and `@hash` process; the rest are ignored. */
export const MAX_ARRAY_ITEMS = 1000;
/** Most fields `@scalars` keeps (GA4 takes 25 parameters per event; this bounds a hostile object). */
export const MAX_SCALAR_FIELDS = 100;
/** Most objects one `@merge` combines. */
export const MAX_MERGE_OBJECTS = 16;
/** Most fallbacks in one `@path` list. */
export const MAX_PATH_FALLBACKS = 16;
/** Deepest nesting of a mapping, so a hostile template cannot exhaust the stack at render. */
export const MAX_MAPPING_DEPTH = 64;
/** Most entries in one `@lookup` table. */
export const MAX_LOOKUP_ENTRIES = 1000;
/** Longest text `@lookup` looks up; a longer value is no key of any table, so it is not even folded. */
export const MAX_LOOKUP_KEY_LENGTH = 200;

export const DIRECTIVES = ['@path', '@setting', '@template', '@if', '@arrayPath', '@hash', '@transform', '@scalars', '@merge', '@lookup', '@literal'] as const;
export type Directive = (typeof DIRECTIVES)[number];

export const HASH_KINDS = [
  'email', 'phone', 'name', 'city', 'state', 'zip', 'country', 'externalId', 'gender', 'dateOfBirth', 'plain',
] as const;
export type HashKind = (typeof HASH_KINDS)[number];

export const TRANSFORMS = [
  'lower', 'upper', 'trim', 'snakeCase', 'unixSeconds', 'unixMillis', 'unixMicros', 'isoDate',
  'toString', 'toNumber', 'toBoolean', 'truncateIp', 'stripQuery',
] as const;
export type TransformFn = (typeof TRANSFORMS)[number];

/** A problem found while compiling a mapping; `path` is a JSON path such as `mappings[0].event.x`. */
export interface MappingIssue {
  path: string;
  message: string;
}

/** What a compiled mapping reads: `$` is `current`, `$$` is `root`. */
export interface Scope {
  root: unknown;
  current: unknown;
  settings: Readonly<Record<string, unknown>>;
}

export type Evaluator = (scope: Scope) => unknown;

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
}

/** Compile a mapping once; collect every problem rather than stopping at the first. */
export function compileMapping(mapping: unknown, options: CompileOptions = {}): CompiledMapping {
  const ctx: Ctx = { settings: new Set(options.settings ?? []), issues: [], inArray: false, depth: 0, reads: { event: false } };
  const evaluator = compileNode(mapping, ctx, options.at ?? '');
  const noSettings: Readonly<Record<string, unknown>> = {};
  return {
    issues: ctx.issues,
    readsEvent: ctx.reads.event,
    evaluate: (root, settings = noSettings) => evaluator({ root, current: root, settings }),
  };
}

// ---------------------------------------------------------------------------------------------
// Compilation

interface Ctx {
  settings: ReadonlySet<string>;
  issues: MappingIssue[];
  /** Inside an `@arrayPath` item mapping, `$` is the element, not the event. */
  inArray: boolean;
  depth: number;
  /** Set once a path reader is compiled (every read of the event, `$` or `$$`, goes through one); shared by child contexts. */
  reads: { event: boolean };
}

const ABSENT: Evaluator = () => undefined;

/** Evaluators that always return the same (deep-frozen) value, so parents can fold them. */
const constants = new WeakMap<Evaluator, unknown>();

function constant(value: unknown): Evaluator {
  const frozen = deepFreeze(value);
  const evaluator: Evaluator = () => frozen;
  constants.set(evaluator, frozen);
  return evaluator;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

const IDENTIFIER_KEY = /^[A-Za-z_$@][\w$@-]*$/;

/** Append a key or index to a JSON path the way people write it: `a.b[0]["odd key"]`. */
export function joinPath(at: string, key: string | number): string {
  if (typeof key === 'number') return `${at}[${key}]`;
  if (IDENTIFIER_KEY.test(key)) return at === '' ? key : `${at}.${key}`;
  return `${at}[${JSON.stringify(key)}]`;
}

function issue(ctx: Ctx, path: string, message: string): Evaluator {
  ctx.issues.push({ path, message });
  return ABSENT;
}

function child(ctx: Ctx, inArray = ctx.inArray): Ctx {
  return { ...ctx, inArray, depth: ctx.depth + 1 };
}

function compileNode(node: unknown, ctx: Ctx, at: string): Evaluator {
  if (ctx.depth > MAX_MAPPING_DEPTH) return issue(ctx, at, `mapping nested deeper than ${MAX_MAPPING_DEPTH} levels`);
  if (node === null || typeof node === 'string' || typeof node === 'boolean') return constant(node);
  if (typeof node === 'number') {
    return Number.isFinite(node) ? constant(node) : issue(ctx, at, 'numbers must be finite');
  }
  if (Array.isArray(node)) return compileArray(node, ctx, at);
  if (isPlainRecord(node)) {
    const keys = Object.keys(node);
    const directives = keys.filter((k) => k.startsWith('@'));
    if (directives.length > 0) {
      if (keys.length !== 1) {
        return issue(ctx, at, `a directive must be the only key of its object (found ${keys.join(', ')}); use {"@literal": …} for literal @ keys`);
      }
      const key = keys[0] as string;
      return compileDirective(key, node[key], ctx, at);
    }
    return compileObject(node, keys, ctx, at);
  }
  return issue(ctx, at, 'not a JSON value');
}

function compileArray(node: unknown[], ctx: Ctx, at: string): Evaluator {
  const items = node.map((element, i) => compileNode(element, child(ctx), joinPath(at, i)));
  if (items.every((e) => constants.has(e))) return constant(items.map((e) => constants.get(e)));
  return (scope) => {
    const out: unknown[] = [];
    for (const item of items) {
      const value = item(scope);
      if (value !== undefined) out.push(value);
    }
    return out;
  };
}

function compileObject(node: Record<string, unknown>, keys: string[], ctx: Ctx, at: string): Evaluator {
  const fields: Array<[string, Evaluator]> = [];
  for (const key of keys) {
    // Output keys are static; refusing `__proto__` here is what keeps assignment below safe.
    if (key === '__proto__') {
      issue(ctx, joinPath(at, key), 'the key "__proto__" is not allowed');
      continue;
    }
    fields.push([key, compileNode(node[key], child(ctx), joinPath(at, key))]);
  }
  if (fields.every(([, e]) => constants.has(e))) {
    const value: Record<string, unknown> = {};
    for (const [key, e] of fields) value[key] = constants.get(e);
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

function compileDirective(key: string, arg: unknown, ctx: Ctx, at: string): Evaluator {
  const argAt = joinPath(at, key);
  switch (key) {
    case '@path': {
      return compilePathSpec(arg, ctx, argAt) ?? ABSENT;
    }
    case '@setting': {
      if (typeof arg !== 'string') return issue(ctx, argAt, 'expected the name of a setting');
      return compileSettingRead(arg, ctx, argAt);
    }
    case '@template':
      return compileTemplate(arg, ctx, argAt);
    case '@if':
      return compileIf(arg, ctx, argAt);
    case '@arrayPath':
      return compileArrayPath(arg, ctx, argAt);
    case '@hash':
      return compileHash(arg, ctx, argAt);
    case '@transform':
      return compileTransform(arg, ctx, argAt);
    case '@scalars':
      return compileScalars(arg, ctx, argAt);
    case '@merge':
      return compileMerge(arg, ctx, argAt);
    case '@lookup':
      return compileLookup(arg, ctx, argAt);
    case '@literal':
      return constant(structuredClone(arg));
    default:
      return issue(ctx, at, `unknown directive ${key} (known: ${DIRECTIVES.join(', ')})`);
  }
}

/** Check an argument object has exactly the allowed keys; report the rest. */
function checkKeys(arg: unknown, ctx: Ctx, at: string, required: readonly string[], optional: readonly string[]): arg is Record<string, unknown> {
  if (!isPlainRecord(arg)) {
    issue(ctx, at, `expected an object with ${[...required, ...optional.map((k) => `${k}?`)].join(', ')}`);
    return false;
  }
  let ok = true;
  for (const key of required) {
    if (!Object.hasOwn(arg, key)) {
      issue(ctx, at, `missing "${key}"`);
      ok = false;
    }
  }
  for (const key of Object.keys(arg)) {
    if (!required.includes(key) && !optional.includes(key)) {
      issue(ctx, joinPath(at, key), `unknown key "${key}"`);
      ok = false;
    }
  }
  return ok;
}

// --- @path ------------------------------------------------------------------------------------

export type PathSegment = string | number;

export interface ParsedPath {
  /** `$` reads the current value (the event, or the element inside `@arrayPath`); `$$` the event. */
  base: 'current' | 'root';
  segments: PathSegment[];
}

const NAME_CHARS = /[A-Za-z0-9_-]/;

/**
 * Parse JSONPath-lite: `$`, `$$`, then `.name`, `[index]` or `["quoted name"]` segments. No
 * wildcards, filters or recursion: a path names at most one value, so reading it is O(depth).
 */
export function parsePath(source: string): ParsedPath | { error: string } {
  if (!source.startsWith('$')) return { error: `path "${source}" must start with $` };
  const base = source.startsWith('$$') ? 'root' : 'current';
  let i = base === 'root' ? 2 : 1;
  const segments: PathSegment[] = [];
  while (i < source.length) {
    const c = source[i];
    if (c === '.') {
      let j = i + 1;
      while (j < source.length && NAME_CHARS.test(source[j] as string)) j++;
      if (j === i + 1) return { error: `path "${source}": expected a name after "." at ${i}` };
      segments.push(source.slice(i + 1, j));
      i = j;
    } else if (c === '[') {
      const q = source[i + 1];
      if (q === '"' || q === "'") {
        const end = source.indexOf(q, i + 2);
        if (end === -1 || source[end + 1] !== ']') return { error: `path "${source}": unterminated quoted name at ${i}` };
        const name = source.slice(i + 2, end);
        if (name.length === 0) return { error: `path "${source}": empty quoted name at ${i}` };
        segments.push(name);
        i = end + 2;
      } else {
        const end = source.indexOf(']', i);
        const digits = end === -1 ? '' : source.slice(i + 1, end);
        if (!/^\d{1,6}$/.test(digits)) return { error: `path "${source}": expected [index] or ["name"] at ${i}` };
        segments.push(Number(digits));
        i = end + 1;
      }
    } else {
      return { error: `path "${source}": unexpected "${c}" at ${i}` };
    }
    if (segments.length > MAX_PATH_DEPTH) return { error: `path "${source}" is deeper than ${MAX_PATH_DEPTH} segments` };
  }
  for (const segment of segments) {
    if (typeof segment === 'string' && FORBIDDEN_KEYS.has(segment)) {
      return { error: `path "${source}": segment "${segment}" is not allowed` };
    }
  }
  return { base, segments };
}

/** Read a parsed path's segments from `value`: own properties and in-range indexes only. */
export function readSegments(value: unknown, segments: readonly PathSegment[]): unknown {
  let current = value;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(current) || segment >= current.length) return undefined;
      current = current[segment];
    } else {
      if (!isPlainRecord(current) || !Object.hasOwn(current, segment)) return undefined;
      current = current[segment];
    }
  }
  return current;
}

/** Missing, `null` and `""` are all "not there" for vendors; treating them alike keeps fallbacks simple. */
export function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

function compileSettingRead(name: string, ctx: Ctx, at: string): Evaluator {
  if (!ctx.settings.has(name)) return issue(ctx, at, `undeclared setting "${name}"`);
  return (scope) => {
    const value = Object.hasOwn(scope.settings, name) ? scope.settings[name] : undefined;
    return isPresent(value) ? value : undefined;
  };
}

/** One path to a reader; `$.settings.<name>` (at the event level) reads a setting. */
function compileReader(source: string, ctx: Ctx, at: string): Evaluator | undefined {
  const parsed = parsePath(source);
  if ('error' in parsed) {
    issue(ctx, at, parsed.error);
    return undefined;
  }
  const atEvent = parsed.base === 'root' || !ctx.inArray;
  if (atEvent && parsed.segments[0] === 'settings') {
    const name = parsed.segments[1];
    if (parsed.segments.length !== 2 || typeof name !== 'string') {
      issue(ctx, at, `path "${source}": settings are read as $.settings.<name>`);
      return undefined;
    }
    return compileSettingRead(name, ctx, at);
  }
  const segments = parsed.segments;
  ctx.reads.event = true;
  if (parsed.base === 'root') return (scope) => readSegments(scope.root, segments);
  return (scope) => readSegments(scope.current, segments);
}

/** A path or an ordered list of fallback paths; yields the first present value. */
function compilePathSpec(arg: unknown, ctx: Ctx, at: string): Evaluator | undefined {
  if (typeof arg === 'string') {
    const reader = compileReader(arg, ctx, at);
    if (reader === undefined) return undefined;
    return (scope) => {
      const value = reader(scope);
      return isPresent(value) ? value : undefined;
    };
  }
  if (!Array.isArray(arg) || arg.length === 0 || arg.length > MAX_PATH_FALLBACKS) {
    issue(ctx, at, `expected a path string or a list of 1..${MAX_PATH_FALLBACKS} path strings`);
    return undefined;
  }
  const readers: Evaluator[] = [];
  arg.forEach((source, i) => {
    if (typeof source !== 'string') {
      issue(ctx, joinPath(at, i), 'expected a path string');
      return;
    }
    const reader = compileReader(source, ctx, joinPath(at, i));
    if (reader !== undefined) readers.push(reader);
  });
  if (readers.length !== arg.length) return undefined;
  return (scope) => {
    for (const reader of readers) {
      const value = reader(scope);
      if (isPresent(value)) return value;
    }
    return undefined;
  };
}

// --- @template --------------------------------------------------------------------------------

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

function compileTemplate(arg: unknown, ctx: Ctx, at: string): Evaluator {
  let text: string;
  let encode = true;
  if (typeof arg === 'string') {
    text = arg;
  } else {
    if (!checkKeys(arg, ctx, at, ['text'], ['encode'])) return ABSENT;
    if (typeof arg.text !== 'string') return issue(ctx, joinPath(at, 'text'), 'expected a string');
    if (arg.encode !== undefined && typeof arg.encode !== 'boolean') return issue(ctx, joinPath(at, 'encode'), 'expected a boolean');
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
      issue(ctx, at, `unbalanced braces in template "${text}"`);
    }
    parts.push(literal);
    const expression = (match[1] ?? '').trim();
    let reader: Evaluator | undefined;
    if (expression.startsWith('settings.')) {
      reader = compileSettingRead(expression.slice('settings.'.length), ctx, at);
    } else if (expression.startsWith('$')) {
      reader = compileReader(expression, ctx, at);
    } else {
      issue(ctx, at, `placeholder {{${expression}}} must be settings.<name> or a $ path`);
    }
    if (reader === undefined) ok = false;
    else parts.push(reader);
    last = match.index + match[0].length;
  }
  const tail = text.slice(last);
  if (tail.includes('{{') || tail.includes('}}')) {
    ok = false;
    issue(ctx, at, `unbalanced braces in template "${text}"`);
  }
  parts.push(tail);
  if (!ok) return ABSENT;
  const pieces = parts.filter((p) => p !== '');
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

// --- @if --------------------------------------------------------------------------------------

function compileIf(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!checkKeys(arg, ctx, at, ['then'], ['exists', 'equals', 'else'])) return ABSENT;
  const hasExists = Object.hasOwn(arg, 'exists');
  const hasEquals = Object.hasOwn(arg, 'equals');
  if (hasExists === hasEquals) return issue(ctx, at, 'give exactly one condition: "exists" or "equals"');
  const then = compileNode(arg.then, child(ctx), joinPath(at, 'then'));
  const otherwise = Object.hasOwn(arg, 'else') ? compileNode(arg.else, child(ctx), joinPath(at, 'else')) : ABSENT;
  if (hasExists) {
    const subject = compileNode(arg.exists, child(ctx), joinPath(at, 'exists'));
    return (scope) => (isPresent(subject(scope)) ? then(scope) : otherwise(scope));
  }
  const pair = arg.equals;
  if (!Array.isArray(pair) || pair.length !== 2) return issue(ctx, joinPath(at, 'equals'), 'expected [mapping, mapping]');
  const left = compileNode(pair[0], child(ctx), joinPath(joinPath(at, 'equals'), 0));
  const right = compileNode(pair[1], child(ctx), joinPath(joinPath(at, 'equals'), 1));
  return (scope) => {
    const a = left(scope);
    const b = right(scope);
    // Absent equals nothing, not even absent: a missing field must never look like a match.
    return a !== undefined && b !== undefined && jsonEqual(a, b) ? then(scope) : otherwise(scope);
  };
}

/** Structural equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isPlainRecord(a) && isPlainRecord(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

// --- @arrayPath -------------------------------------------------------------------------------

function compileArrayPath(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!Array.isArray(arg) || arg.length !== 2) return issue(ctx, at, 'expected [path, itemMapping]');
  const source = compilePathSpec(arg[0], ctx, joinPath(at, 0));
  const item = compileNode(arg[1], child(ctx, true), joinPath(at, 1));
  if (source === undefined) return ABSENT;
  return (scope) => {
    const list = source(scope);
    if (!Array.isArray(list)) return undefined;
    const out: unknown[] = [];
    const n = Math.min(list.length, MAX_ARRAY_ITEMS);
    for (let i = 0; i < n; i++) {
      const value = item({ root: scope.root, current: list[i], settings: scope.settings });
      if (value !== undefined) out.push(value);
    }
    return out.length > 0 ? out : undefined;
  };
}

// --- @hash ------------------------------------------------------------------------------------

function compileHash(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!checkKeys(arg, ctx, at, ['kind', 'value'], ['country'])) return ABSENT;
  const kind = arg.kind;
  if (typeof kind !== 'string' || !(HASH_KINDS as readonly string[]).includes(kind)) {
    return issue(ctx, joinPath(at, 'kind'), `expected one of ${HASH_KINDS.join(', ')}`);
  }
  const value = compileNode(arg.value, child(ctx), joinPath(at, 'value'));
  if (!Object.hasOwn(arg, 'country')) return (scope) => hashValue(kind as HashKind, value(scope));
  // Only a phone number reads differently by country (its calling code and trunk prefix).
  if (kind !== 'phone') return issue(ctx, joinPath(at, 'country'), '"country" applies to kind "phone" only');
  const country = compileNode(arg.country, child(ctx), joinPath(at, 'country'));
  return (scope) => {
    const code = country(scope);
    return hashValue('phone', value(scope), typeof code === 'string' ? { country: code } : {});
  };
}


export interface NormalizeOptions {
  /** For `phone`: the customer's country (ISO code or name), to read a national number. */
  country?: string;
}

/**
 * Normalise one customer-information value the way Meta's Conversions API expects before hashing:
 * https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
 * Returns undefined when nothing usable is left, so the hash of an empty string is never made.
 * Idempotent: normalising twice changes nothing.
 */
export function normalizeForHash(kind: HashKind, raw: string, options: NormalizeOptions = {}): string | undefined {
  let out: string | undefined;
  switch (kind) {
    case 'email':
      out = raw.trim().toLowerCase();
      break;
    case 'phone':
      out = phoneDigits(raw, options.country);
      break;
    case 'name':
      // Lowercase, no punctuation; letters of any script are kept, UTF-8 in Unicode NFC so that a
      // decomposed "Vale\u0301ry" hashes like "Valéry". Spaces go too, as Meta's own normaliser in
      // fbevents.js and its Conversions API parameter builder remove them ("Mary Ann" → "maryann"),
      // so the server hash matches the browser's.
      out = raw.normalize('NFC').toLowerCase().replace(/[\p{P}\p{S}\s]/gu, '').normalize('NFC');
      break;
    case 'city':
      out = raw.normalize('NFC').toLowerCase().replace(/[\p{P}\p{S}\s]/gu, '').normalize('NFC');
      break;
    case 'state':
      // A US state (name or code) becomes its 2-letter ANSI code; other regions are lowercased and
      // stripped like a city ("New South Wales" → "newsouthwales"), as Meta asks.
      out = usStateCode(raw) ?? raw.normalize('NFC').toLowerCase().replace(/[\p{P}\p{S}\s]/gu, '').normalize('NFC');
      break;
    case 'zip':
      out = raw.toLowerCase().replace(/[\s-]/g, '');
      // US ZIP+4 ("94025-1234") keeps only the 5-digit ZIP.
      if (/^\d{9}$/.test(out)) out = out.slice(0, 5);
      break;
    case 'country':
      out = countryCode(raw);
      break;
    case 'gender': {
      const first = raw.trim().toLowerCase()[0];
      if (first !== 'f' && first !== 'm') return undefined;
      out = first;
      break;
    }
    case 'dateOfBirth':
      out = birthDate(raw);
      break;
    case 'externalId':
    case 'plain':
      out = raw.trim();
      break;
  }
  return out === undefined || out === '' ? undefined : out;
}

function hashOne(kind: HashKind, value: unknown, options: NormalizeOptions): string | undefined {
  let raw: string;
  if (typeof value === 'string') raw = value;
  else if (typeof value === 'number' && Number.isFinite(value)) raw = String(value);
  else return undefined;
  const trimmed = raw.trim();
  // Already a SHA-256 digest (hashed by the site or the pixel): hashing again would break matching;
  // the digest of the empty string is no value at all.
  if (isSha256Hex(trimmed)) return sha256Digest(trimmed);
  const normalized = normalizeForHash(kind, raw, options);
  if (normalized === undefined) return undefined;
  // One-shot hash (Node ≥ 21.7) avoids a Hash object per value on the hot path.
  return hash('sha256', normalized, 'hex');
}

/** Normalise and SHA-256 a value (or each element of an array); absent when nothing is left. */
export function hashValue(kind: HashKind, value: unknown, options: NormalizeOptions = {}): string | string[] | undefined {
  if (Array.isArray(value)) {
    const out: string[] = [];
    const n = Math.min(value.length, MAX_ARRAY_ITEMS);
    for (let i = 0; i < n; i++) {
      const hashed = hashOne(kind, value[i], options);
      if (hashed !== undefined) out.push(hashed);
    }
    return out.length > 0 ? out : undefined;
  }
  return hashOne(kind, value, options);
}

// --- @transform -------------------------------------------------------------------------------

function compileTransform(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!checkKeys(arg, ctx, at, ['fn', 'value'], [])) return ABSENT;
  const fn = arg.fn;
  if (typeof fn !== 'string' || !(TRANSFORMS as readonly string[]).includes(fn)) {
    return issue(ctx, joinPath(at, 'fn'), `expected one of ${TRANSFORMS.join(', ')}`);
  }
  const value = compileNode(arg.value, child(ctx), joinPath(at, 'value'));
  return (scope) => applyTransform(fn as TransformFn, value(scope));
}

// --- @merge ------------------------------------------------------------------------------------

/**
 * One object from several, later fields winning: for output whose field names are data, such as
 * the item parameters of a GA4 hit (`pr1`, `pr2`, …) next to fixed fields.
 */
function compileMerge(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!Array.isArray(arg) || arg.length < 1 || arg.length > MAX_MERGE_OBJECTS) {
    return issue(ctx, at, `expected an array of 1 to ${MAX_MERGE_OBJECTS} mappings`);
  }
  const parts = arg.map((element, i) => compileNode(element, child(ctx), joinPath(at, i)));
  return (scope) => {
    let out: Record<string, unknown> | undefined;
    for (const part of parts) {
      const value = part(scope);
      if (!isPlainRecord(value)) continue;
      out ??= {};
      for (const key of Object.keys(value)) {
        // Keys here come from data: `__proto__` would set the prototype, not a field.
        if (!FORBIDDEN_KEYS.has(key) && value[key] !== undefined) out[key] = value[key];
      }
    }
    return out;
  };
}

// --- @lookup -----------------------------------------------------------------------------------

/**
 * A value translated through a literal table: `{"table": {"Order Completed": "Purchase", …},
 * "value": m, "default"?: m, "ignoreCase"?: bool}`. It is how templates map one vendor's event
 * names onto another's (Segment e-commerce and GA4 names onto Meta standard events) as data.
 * The table lives in a Map built at load, so keys such as `__proto__` or `toString` are only ever
 * the table's own entries, never inherited properties.
 */
function compileLookup(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!checkKeys(arg, ctx, at, ['table', 'value'], ['default', 'ignoreCase'])) return ABSENT;
  const { table, ignoreCase } = arg;
  const tableAt = joinPath(at, 'table');
  if (!isPlainRecord(table)) return issue(ctx, tableAt, 'expected an object of key → literal value');
  const keys = Object.keys(table);
  if (keys.length === 0 || keys.length > MAX_LOOKUP_ENTRIES) return issue(ctx, tableAt, `expected 1 to ${MAX_LOOKUP_ENTRIES} entries`);
  if (ignoreCase !== undefined && typeof ignoreCase !== 'boolean') return issue(ctx, joinPath(at, 'ignoreCase'), 'expected a boolean');
  const fold = ignoreCase === true;
  const entries = new Map<string, unknown>();
  let ok = true;
  for (const key of keys) {
    const entryAt = joinPath(tableAt, key);
    const folded = fold ? key.toLowerCase() : key;
    const value = table[key];
    if (key.length > MAX_LOOKUP_KEY_LENGTH) {
      ok = false;
      issue(ctx, entryAt, `keys are at most ${MAX_LOOKUP_KEY_LENGTH} characters`);
    } else if (entries.has(folded)) {
      ok = false;
      issue(ctx, entryAt, 'duplicate key (keys are compared ignoring case)');
    } else if (value === null || value === undefined || value === '' || (typeof value === 'number' && !Number.isFinite(value))) {
      // An entry that maps to "absent" would be indistinguishable from a miss; say so at load.
      ok = false;
      issue(ctx, entryAt, 'a table value must be present (not null or ""); leave the key out to fall back to "default"');
    } else {
      entries.set(folded, deepFreeze(structuredClone(value)));
    }
  }
  const value = compileNode(arg.value, child(ctx), joinPath(at, 'value'));
  const otherwise = Object.hasOwn(arg, 'default') ? compileNode(arg.default, child(ctx), joinPath(at, 'default')) : ABSENT;
  if (!ok) return ABSENT;
  return (scope) => {
    const key = value(scope);
    if (typeof key === 'string' && key.length <= MAX_LOOKUP_KEY_LENGTH) {
      const hit = entries.get(fold ? key.toLowerCase() : key);
      if (hit !== undefined) return hit;
    }
    return otherwise(scope);
  };
}

// --- @scalars ---------------------------------------------------------------------------------

/**
 * The scalar fields of an object, of one kind: `string` keeps strings and booleans (as "true" /
 * "false"), `number` keeps finite numbers. It is what a query-string protocol needs from a free-form
 * object, e.g. GA4's `ep.<name>` (text) and `epn.<name>` (number) event parameters from `properties`.
 */
function compileScalars(arg: unknown, ctx: Ctx, at: string): Evaluator {
  if (!checkKeys(arg, ctx, at, ['value', 'type'], ['omit', 'max'])) return ABSENT;
  const { type, omit, max } = arg;
  if (type !== 'string' && type !== 'number') return issue(ctx, joinPath(at, 'type'), 'expected "string" or "number"');
  if (omit !== undefined && (!Array.isArray(omit) || !omit.every((k) => typeof k === 'string'))) {
    return issue(ctx, joinPath(at, 'omit'), 'expected an array of field names');
  }
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_SCALAR_FIELDS)) {
    return issue(ctx, joinPath(at, 'max'), `expected an integer from 1 to ${MAX_SCALAR_FIELDS}`);
  }
  const skip = new Set<string>(omit ?? []);
  const limit = max ?? MAX_SCALAR_FIELDS;
  const value = compileNode(arg.value, child(ctx), joinPath(at, 'value'));
  return (scope) => {
    const source = value(scope);
    if (!isPlainRecord(source)) return undefined;
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const key of Object.keys(source)) {
      if (n >= limit) break;
      if (skip.has(key) || FORBIDDEN_KEYS.has(key)) continue;
      const v = source[key];
      let kept: unknown;
      if (type === 'number') kept = typeof v === 'number' && Number.isFinite(v) ? v : undefined;
      else kept = typeof v === 'string' ? (v === '' ? undefined : v) : typeof v === 'boolean' ? String(v) : undefined;
      if (kept === undefined) continue;
      out[key] = kept;
      n++;
    }
    return n > 0 ? out : undefined;
  };
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const ISO_DATE_START = /^\d{4}-\d{2}-\d{2}/;
/** Largest |ms| a JavaScript Date can hold. */
const MAX_DATE_MS = 8.64e15;

/**
 * A time as integer microseconds since the epoch. Numbers (or numeric strings) are read by
 * magnitude: |n| ≥ 1e14 is microseconds, ≥ 1e11 milliseconds, otherwise seconds (1e11 s is the
 * year 5138, 1e11 ms is 1973). Strings otherwise must be ISO 8601 (`YYYY-MM-DD…`).
 */
export function toEpochMicros(value: unknown): number | undefined {
  let micros: number;
  if (typeof value === 'string' && !NUMERIC.test(value.trim())) {
    if (!ISO_DATE_START.test(value.trim())) return undefined;
    const ms = Date.parse(value.trim());
    if (Number.isNaN(ms)) return undefined;
    micros = ms * 1000;
  } else {
    const n = typeof value === 'string' ? Number(value.trim()) : value;
    if (typeof n !== 'number' || !Number.isFinite(n)) return undefined;
    const magnitude = Math.abs(n);
    micros = magnitude >= 1e14 ? n : magnitude >= 1e11 ? n * 1e3 : n * 1e6;
  }
  micros = Math.round(micros);
  if (Math.abs(micros) > MAX_DATE_MS * 1000) return undefined;
  return micros;
}

/** Zero the host part: IPv4 keeps /24, IPv6 keeps /48 (an IPv4-mapped IPv6 is treated as IPv4). */
export function truncateIp(value: string): string | undefined {
  const ip = value.trim();
  if (isIPv4(ip)) return ip.replace(/\.\d+$/, '.0');
  const bare = ip.replace(/%.*$/, '');
  if (!isIPv6(bare)) return undefined;
  const groups = expandIPv6(bare);
  if (groups === undefined) return undefined;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = [groups[6], groups[7]];
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.0`;
  }
  return formatIPv6([groups[0] ?? 0, groups[1] ?? 0, groups[2] ?? 0, 0, 0, 0, 0, 0]);
}

function expandIPv6(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded IPv4 tail ("::ffff:192.0.2.1") stands for the last two groups.
    const octets = last.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
    const [a, b, c, d] = octets as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const parse = (s: string): number[] =>
    s === '' ? [] : s.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : Number.NaN));
  const halves = text.split('::');
  let groups: number[];
  if (halves.length === 2) {
    const head = parse(halves[0] ?? '');
    const rest = parse(halves[1] ?? '');
    const fill = 8 - tail.length - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else if (halves.length === 1) {
    groups = [...parse(text), ...tail];
  } else {
    return undefined;
  }
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return undefined;
  return groups;
}

/** RFC 5952 text form: lowercase, no leading zeros, the longest run of ≥ 2 zero groups as `::`. */
function formatIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLength < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Apply one transform; a value the transform cannot convert yields absent, never an exception. */
export function applyTransform(fn: TransformFn, value: unknown): unknown {
  let out: unknown;
  switch (fn) {
    case 'lower':
      out = scalarText(value)?.toLowerCase();
      break;
    case 'upper':
      out = scalarText(value)?.toUpperCase();
      break;
    case 'trim':
      out = scalarText(value)?.trim();
      break;
    case 'snakeCase':
      // "Order Completed" / "orderCompleted" → "order_completed": Segment-style names for vendors
      // (GA4) that only take letters, digits and underscores.
      out = scalarText(value)
        ?.replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1_$2')
        .replace(/[^\p{L}\p{N}]+/gu, '_')
        .replace(/^_+|_+$/g, '')
        .toLowerCase();
      break;
    case 'unixSeconds': {
      const micros = toEpochMicros(value);
      out = micros === undefined ? undefined : Math.floor(micros / 1e6);
      break;
    }
    case 'unixMillis': {
      const micros = toEpochMicros(value);
      out = micros === undefined ? undefined : Math.floor(micros / 1e3);
      break;
    }
    case 'unixMicros':
      out = toEpochMicros(value);
      break;
    case 'isoDate': {
      const micros = toEpochMicros(value);
      out = micros === undefined ? undefined : new Date(Math.floor(micros / 1e3)).toISOString();
      break;
    }
    case 'toString':
      out = scalarText(value);
      break;
    case 'toNumber':
      if (typeof value === 'number') out = Number.isFinite(value) ? value : undefined;
      else if (typeof value === 'string' && NUMERIC.test(value.trim())) {
        const n = Number(value.trim());
        out = Number.isFinite(n) ? n : undefined;
      }
      break;
    case 'toBoolean':
      if (typeof value === 'boolean') out = value;
      else if (value === 1 || value === 0) out = value === 1;
      else if (typeof value === 'string') {
        const text = value.trim().toLowerCase();
        if (text === 'true' || text === '1' || text === 'yes') out = true;
        else if (text === 'false' || text === '0' || text === 'no') out = false;
      }
      break;
    case 'truncateIp':
      out = typeof value === 'string' ? truncateIp(value) : undefined;
      break;
    case 'stripQuery':
      if (typeof value === 'string') {
        const cut = value.search(/[?#]/);
        out = cut === -1 ? value : value.slice(0, cut);
      }
      break;
  }
  return isPresent(out) ? out : undefined;
}
