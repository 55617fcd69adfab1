/**
 * Loading and compiling destination templates. Every problem of a file is reported at once, each
 * with the file and the JSON path inside it (`templates/ga4/template.json: mappings[0].event.x:
 * unknown directive @foo`), because a template author fixing one error per run is slow.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RetrySafeFailure } from './types.ts';
import { TemplateError } from '../errors.ts';
import type { EventType } from '../ingest/event.ts';
import { getDotted, isPlainRecord, parseDottedPath } from '../lib/dotted.ts';
import { compileMapping, type CompiledMapping } from './mapping/compile.ts';
import { joinPath } from './mapping/issue-path.ts';
import type { TransformFn } from './mapping/transforms.ts';
import type { MappingIssue } from './mapping/types.ts';
import { TemplateSchema, type ConsentDefaults, type BisectRuleDefinition, type RetryRuleDefinition, type SuccessCodeDefinition, type TemplateDefinition } from './template-schema.ts';
import type { AnswerRejection } from '../lib/http/send.ts';
import type { BatchLimits } from './types.ts';
import { deepFreeze } from '../lib/freeze.ts';
import { compileVendorRules, type CompiledVendorRules } from './rules/check.ts';
import { compileRowErrors, type CompiledRowErrors, type RowErrorsDefinition } from './row-errors.ts';

/** `<repo>/templates`. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

/** Limits of a template without `batch`: one event per request. */
export const UNBATCHED_LIMITS: BatchLimits = Object.freeze({ maxEvents: 1, maxBytes: 1_000_000, lingerMs: 0 });

export type TemplateIssue = MappingIssue;

/** A field of the rendered output: the item, or the envelope when the path starts with `envelope.`. */
export interface FieldRef {
  target: 'item' | 'envelope';
  segments: string[];
  /** The path as written in the template, for messages. */
  source: string;
}

export interface CompiledRule {
  index: number;
  /** Event types this rule handles; undefined = any. */
  types: ReadonlySet<EventType> | undefined;
  /** Track event names this rule handles; undefined = any. */
  events: ReadonlySet<string> | undefined;
  envelope: CompiledMapping | undefined;
  event: CompiledMapping;
  required: FieldRef[];
  patterns: Array<FieldRef & { regex: RegExp }>;
  /** Matched events for which `when` renders present are skipped with `reason`. */
  skip: { when: CompiledMapping; reason: string } | undefined;
}

export interface CompiledRedaction {
  name: string;
  remove: FieldRef[];
  transform: Array<FieldRef & { fn: TransformFn }>;
  set: Array<FieldRef & { value: unknown }>;
}

/** A template's `testMode`, compiled: where the preview's test event code goes, and the fields it sets. */
export interface CompiledTestMode {
  docs: string;
  code: FieldRef | undefined;
  set: Array<FieldRef & { value: unknown }>;
}

export interface CompiledRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** `json` bodies, or `urlencoded-lines` (envelope in the query string, one item per body line). */
  format: 'json' | 'urlencoded-lines';
  url: CompiledMapping;
  query: Array<[string, CompiledMapping]>;
  headers: Array<[string, CompiledMapping]>;
  /** Segments of the item field holding the idempotency key, when declared. */
  idempotencyKey: string[] | undefined;
  /** The ambiguous failures the template declares safe to resend (`request.retrySafe`). */
  retrySafe: ReadonlySet<RetrySafeFailure>;
  /** The template's default for destinations[].maxInFlight (`request.maxInFlight`), when it sets one. */
  maxInFlight: number | undefined;
}

/** A validated template with every mapping compiled; what `bindDestination` takes. */
export interface CompiledTemplate {
  id: string;
  name: string;
  version: number;
  /** File it was loaded from (or a label for inline templates). */
  source: string;
  definition: TemplateDefinition;
  consent: ConsentDefaults | undefined;
  request: CompiledRequest;
  limits: BatchLimits;
  /** Body field holding the items array; undefined = one event per request. */
  into: string | undefined;
  rules: CompiledRule[];
  redactions: ReadonlyMap<string, CompiledRedaction>;
  /** Whether an error answer is temporary by the template's `retryOn` rules (always false without them). */
  transient: (status: number, body: string) => boolean;
  /** Whether an error answer rejects the whole batch for one invalid event, by `bisectOn` (always false without it). */
  rejectsBatch: (status: number, body: string) => boolean;
  /**
   * A 2xx answer's verdict by `successCode` (undefined = a success); absent without it, so that
   * delivery reads no 2xx body for the other templates.
   */
  answerRejected: ((status: number, body: string) => AnswerRejection | undefined) | undefined;
  /** The vendor's documented limits checked on each rendered event (`rules.checks`); undefined without any. */
  vendorRules: CompiledVendorRules | undefined;
  /** Where a 2xx answer lists failed rows (`rowErrors`); undefined without it, so no 2xx body is read for that. */
  rowErrors: { read: CompiledRowErrors['read']; maxResponseBytes: number; retryAfterSeconds?: number | undefined } | undefined;
  /** How a preview's events are sent in test mode (`testMode`); undefined: not sent in preview. */
  testMode: CompiledTestMode | undefined;
}

export interface CompileResult {
  template?: CompiledTemplate;
  issues: TemplateIssue[];
}

function zodPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out = joinPath(out, typeof key === 'number' ? key : String(key));
  return out;
}

/** A dotted path's segments (the schema has already validated every dotted path). */
function dottedSegments(source: string): string[] {
  const parsed = parseDottedPath(source);
  return 'segments' in parsed ? parsed.segments : [];
}

function fieldRef(source: string): FieldRef {
  const segments = dottedSegments(source);
  if (segments[0] === 'envelope' && segments.length > 1) return { target: 'envelope', segments: segments.slice(1), source };
  return { target: 'item', segments, source };
}

/** Fields of template.json that mappings may read as `{{template.<name>}}` (the one place a version is written). */
type TemplateFields = Readonly<Record<string, string>>;

function templateFields(raw: { apiVersion?: unknown }): TemplateFields {
  return typeof raw.apiVersion === 'string' ? { apiVersion: raw.apiVersion } : {};
}

/** Compile a mapping value and record its issues. */
function compilePart(value: unknown, settings: readonly string[], at: string, issues: TemplateIssue[], template?: TemplateFields): CompiledMapping {
  const compiled = compileMapping(value, { settings, at, ...(template === undefined ? {} : { template }) });
  issues.push(...compiled.issues);
  return compiled;
}

/**
 * When the schema rejects a file, still compile the mapping values it can find, so mapping errors
 * are reported in the same run as schema errors.
 */
function compileLoosely(raw: Record<string, unknown>, issues: TemplateIssue[]): void {
  const settings = isPlainRecord(raw.settings) ? Object.keys(raw.settings) : [];
  const fields = templateFields(raw);
  const request = raw.request;
  if (isPlainRecord(request)) {
    if (Object.hasOwn(request, 'url')) compilePart(request.url, settings, 'request.url', issues, fields);
    for (const part of ['query', 'headers'] as const) {
      const record = request[part];
      if (isPlainRecord(record)) {
        for (const [key, value] of Object.entries(record)) compilePart(value, settings, joinPath(joinPath(`request`, part), key), issues, fields);
      }
    }
  }
  if (Array.isArray(raw.mappings)) {
    raw.mappings.forEach((rule: unknown, i) => {
      if (!isPlainRecord(rule)) return;
      const at = joinPath('mappings', i);
      if (Object.hasOwn(rule, 'envelope')) compilePart(rule.envelope, settings, joinPath(at, 'envelope'), issues);
      if (Object.hasOwn(rule, 'event')) compilePart(rule.event, settings, joinPath(at, 'event'), issues);
      if (isPlainRecord(rule.skip) && Object.hasOwn(rule.skip, 'when')) compilePart(rule.skip.when, settings, joinPath(joinPath(at, 'skip'), 'when'), issues);
    });
  }
}

/** Validate and compile a parsed template.json; never throws. */
export function compileTemplate(raw: unknown, source = '<inline>', expectedId?: string): CompileResult {
  const issues: TemplateIssue[] = [];
  const parsed = TemplateSchema.safeParse(raw);
  if (!parsed.success) {
    for (const zi of parsed.error.issues) issues.push({ path: zodPath(zi.path), message: zi.message });
    if (isPlainRecord(raw)) compileLoosely(raw, issues);
    return { issues };
  }
  const def = parsed.data;
  if (expectedId !== undefined && def.id !== expectedId) {
    issues.push({ path: 'id', message: `id "${def.id}" must equal the directory name "${expectedId}"` });
  }
  const settings = Object.keys(def.settings);
  const fields = templateFields(def);

  const request: CompiledRequest = {
    method: def.request.method,
    format: def.request.format,
    url: compilePart(def.request.url, settings, 'request.url', issues, fields),
    query: Object.entries(def.request.query ?? {}).map(([k, v]) => [k, compilePart(v, settings, joinPath('request.query', k), issues, fields)]),
    headers: Object.entries(def.request.headers ?? {}).map(([k, v]) => [k, compilePart(v, settings, joinPath('request.headers', k), issues, fields)]),
    idempotencyKey: def.request.idempotencyKey === undefined ? undefined : fieldRef(def.request.idempotencyKey).segments,
    retrySafe: new Set(def.request.retrySafe ?? []),
    maxInFlight: def.request.maxInFlight,
  };

  const rules: CompiledRule[] = def.mappings.map((rule, index) => {
    const at = joinPath('mappings', index);
    const type = rule.match?.type;
    const event = rule.match?.event;
    return {
      index,
      types: type === undefined ? undefined : new Set(Array.isArray(type) ? type : [type]),
      events: event === undefined ? undefined : new Set(Array.isArray(event) ? event : [event]),
      envelope: rule.envelope === undefined ? undefined : compilePart(rule.envelope, settings, joinPath(at, 'envelope'), issues),
      event: compilePart(rule.event, settings, joinPath(at, 'event'), issues),
      required: (rule.required ?? []).map(fieldRef),
      patterns: Object.entries(rule.patterns ?? {}).map(([path, source]) => ({ ...fieldRef(path), regex: new RegExp(source, 'u') })),
      skip: rule.skip === undefined ? undefined : { when: compilePart(rule.skip.when, settings, joinPath(joinPath(at, 'skip'), 'when'), issues), reason: rule.skip.reason },
    };
  });

  const redactions = new Map<string, CompiledRedaction>();
  for (const [name, rule] of Object.entries(def.redact ?? {})) {
    redactions.set(name, {
      name,
      remove: (rule.remove ?? []).map(fieldRef),
      transform: Object.entries(rule.transform ?? {}).map(([path, fn]) => ({ ...fieldRef(path), fn })),
      set: Object.entries(rule.set ?? {}).map(([path, value]) => ({ ...fieldRef(path), value: deepFreeze(value) })),
    });
  }

  if (issues.length > 0) return { issues };
  return {
    issues,
    template: {
      id: def.id,
      name: def.name,
      version: def.version,
      source,
      definition: def,
      consent: def.consent,
      request,
      limits: def.batch === undefined
        ? UNBATCHED_LIMITS
        : Object.freeze({ maxEvents: def.batch.maxEvents, maxBytes: def.batch.maxBytes, lingerMs: def.batch.lingerMs }),
      into: def.batch?.into,
      rules,
      redactions,
      transient: compileResponseRules(def.retryOn ?? []),
      rejectsBatch: compileResponseRules(def.bisectOn ?? []),
      answerRejected: compileSuccessCode(def.successCode),
      rowErrors: def.rowErrors === undefined ? undefined : { read: rowErrorsReader(def.rowErrors), maxResponseBytes: def.rowErrors.maxResponseBytes, retryAfterSeconds: def.rowErrors.retryAfterSeconds },
      vendorRules: (def.rules?.checks ?? []).length === 0 ? undefined : compileVendorRules(def.rules ?? {}),
      testMode:
        def.testMode === undefined
          ? undefined
          : {
              docs: def.testMode.docs,
              code: def.testMode.code === undefined ? undefined : fieldRef(def.testMode.code),
              set: Object.entries(def.testMode.set ?? {}).map(([path, value]) => ({ ...fieldRef(path), value: deepFreeze(value) })),
            },
    },
  };
}

/** The compiled `rowErrors` reader as a plain function (it keeps no `this`). */
function rowErrorsReader(def: RowErrorsDefinition): CompiledRowErrors['read'] {
  const compiled = compileRowErrors(def);
  return (body, truncated, size) => compiled.read(body, truncated, size);
}

/** A vendor answer's body, parsed, when it looks like a JSON object; undefined when not or when it does not parse. */
function jsonObjectBody(body: string): unknown {
  if (!body.trimStart().startsWith('{')) return undefined;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/**
 * `successCode` as a predicate on 2xx answers. A body that is not a JSON object, or has no such
 * field, is a success: the rule only turns an answer that names a failure into one.
 */
function compileSuccessCode(rule: SuccessCodeDefinition | undefined): ((status: number, body: string) => AnswerRejection | undefined) | undefined {
  if (rule === undefined) return undefined;
  const segments = dottedSegments(rule.json);
  const transient = rule.transient;
  return (status, body) => {
    if (status < 200 || status > 299) return undefined;
    const code = getDotted(jsonObjectBody(body), segments);
    if (code === undefined || code === null || rule.ok.some((v) => v === code)) return undefined;
    const temporary = transient.some((t) => (typeof t === 'object' ? typeof code === 'number' && code >= t.min && code <= t.max : t === code));
    return temporary ? 'transient' : 'final';
  };
}

/**
 * `retryOn` or `bisectOn` rules as one predicate. The body is parsed only for a status some rule
 * names, and only when it looks like JSON; a body that does not parse matches nothing.
 */
function compileResponseRules(rules: readonly (RetryRuleDefinition | BisectRuleDefinition)[]): (status: number, body: string) => boolean {
  if (rules.length === 0) return () => false;
  const compiled = rules.map((r) => ({
    status: new Set(r.status),
    // Paths into the response body: no `envelope.` prefix to interpret, unlike a rendered field's.
    fields: Object.entries(r.json).map(([path, values]) => ({ segments: dottedSegments(path), values })),
  }));
  return (status, body) => {
    const candidates = compiled.filter((r) => r.status.has(status));
    if (candidates.length === 0) return false;
    const parsed = jsonObjectBody(body);
    if (parsed === undefined) return false;
    return candidates.some((r) => r.fields.every((f) => {
      const v = getDotted(parsed, f.segments);
      return f.values.some((want) => want === v);
    }));
  };
}


/** A path as shown in messages: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? file : rel;
}

/** One line per issue: `<file>: <json path>: <message>`. */
export function formatIssues(file: string, issues: readonly TemplateIssue[]): string[] {
  const shown = displayPath(file);
  return issues.map((i) => (i.path === '' ? `${shown}: ${i.message}` : `${shown}: ${i.path}: ${i.message}`));
}

/** Validate and compile a parsed template; throws one TemplateError listing every problem. */
export function parseTemplate(raw: unknown, source = '<inline>', expectedId?: string): CompiledTemplate {
  const result = compileTemplate(raw, source, expectedId);
  if (result.template === undefined) {
    throw new TemplateError(formatIssues(source, result.issues).join('\n'), { details: { file: source, issues: result.issues } });
  }
  return result.template;
}

/** Read, validate and compile one template.json; never throws. */
export function compileTemplateFile(file: string, expectedId?: string): CompileResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { issues: [{ path: '', message: `cannot read: ${(err as Error).message}` }] };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { issues: [{ path: '', message: `invalid JSON: ${(err as Error).message}` }] };
  }
  return compileTemplate(raw, file, expectedId);
}

/** Read, validate and compile one template.json; throws TemplateError with every problem. */
export function loadTemplate(file: string, expectedId?: string): CompiledTemplate {
  const result = compileTemplateFile(file, expectedId);
  if (result.template === undefined) {
    throw new TemplateError(formatIssues(file, result.issues).join('\n'), { details: { file, issues: result.issues } });
  }
  return result.template;
}

export interface TemplateFileProblem {
  file: string;
  issues: TemplateIssue[];
}

export interface TemplateInspection {
  templates: Map<string, CompiledTemplate>;
  problems: TemplateFileProblem[];
}

/** The template directories under `dir` (`<dir>/<id>/template.json`); `_`/`.` prefixed ones are skipped. */
export function templateDirectories(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !entry.name.startsWith('_'))
    .map((entry) => entry.name)
    .sort();
}

/** Load every template under `dir`, collecting problems instead of throwing (for the CLI). */
export function inspectTemplates(dir: string = DEFAULT_TEMPLATES_DIR): TemplateInspection {
  const templates = new Map<string, CompiledTemplate>();
  const problems: TemplateFileProblem[] = [];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    problems.push({ file: dir, issues: [{ path: '', message: 'template directory not found' }] });
    return { templates, problems };
  }
  for (const name of templateDirectories(dir)) {
    const file = join(dir, name, 'template.json');
    if (!existsSync(file)) {
      problems.push({ file, issues: [{ path: '', message: 'missing template.json' }] });
      continue;
    }
    const result = compileTemplateFile(file, name);
    if (result.template === undefined) problems.push({ file, issues: result.issues });
    else templates.set(result.template.id, result.template);
  }
  return { templates, problems };
}

/** Load every template under `dir`; throws one TemplateError listing every problem of every file. */
export function loadTemplates(dir: string = DEFAULT_TEMPLATES_DIR): ReadonlyMap<string, CompiledTemplate> {
  const { templates, problems } = inspectTemplates(dir);
  if (problems.length > 0) {
    const lines = problems.flatMap((p) => formatIssues(p.file, p.issues));
    throw new TemplateError(lines.join('\n'), { details: problems });
  }
  return templates;
}
