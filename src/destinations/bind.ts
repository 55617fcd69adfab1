/**
 * Binding a compiled template to one destination instance of the site config (settings, optional
 * endpoint override), and the two hot-path operations on it: `render` (one event → envelope + item,
 * never throws) and `buildRequest` (envelope + items → one vendor request).
 */
import { ConfigError, InternalError, RenderError } from '../errors.ts';
import type { Event } from '../ingest/event.ts';
import { getDotted, isPlainRecord, withDotted, withoutDotted } from '../lib/dotted.ts';
import type { CompiledRule, CompiledTemplate, FieldRef } from './load.ts';
import { isPresent } from './mapping/present.ts';
import { applyTransform } from './mapping/transforms.ts';
import { bindAuth } from './auth/bind.ts';
import type { BoundDestination, ItemsJson, RenderedEvent, VendorRequest } from './types.ts';

const CLOSE_ITEMS = Buffer.from(']}');

export type SettingValue = string | number | boolean;

/** A problem with a destination's settings; `path` is relative to its `settings` object. */
export interface SettingsIssue {
  path: string[];
  message: string;
}

export interface BindOptions {
  /** Destination id from the site config (e.g. `meta`). */
  id: string;
  template: CompiledTemplate;
  /** The destination's `settings` object from the site config. */
  settings?: unknown;
  /**
   * Replaces the origin and path of the rendered request URL (tests, staging, a regional host);
   * the rendered query string and the template's query parameters are kept.
   */
  endpoint?: string;
}

function coerce(type: 'string' | 'number' | 'boolean', value: unknown): { value: SettingValue } | { message: string } {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return { value };
      // YAML reads an unquoted id as a number; safe integers convert exactly, larger ones may not.
      if (typeof value === 'number' && Number.isSafeInteger(value)) return { value: String(value) };
      if (typeof value === 'number') return { message: 'expected a string (quote it: large numbers lose precision)' };
      return { message: 'expected a string' };
    case 'number':
      if (typeof value === 'number' && Number.isFinite(value)) return { value };
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return { value: Number(value) };
      return { message: 'expected a number' };
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      return { message: 'expected a boolean' };
  }
}

/**
 * Check a destination's settings against the template's declaration and apply defaults. Values given
 * as strings (e.g. from `${ENV}` references) are converted to declared number/boolean types. Issue
 * messages never contain the value, which may be a secret.
 */
export function resolveSettings(template: CompiledTemplate, input: unknown): { values: Record<string, SettingValue>; issues: SettingsIssue[] } {
  const values: Record<string, SettingValue> = {};
  const issues: SettingsIssue[] = [];
  const given = input ?? {};
  if (!isPlainRecord(given)) return { values, issues: [{ path: [], message: 'expected an object' }] };
  const declared = template.definition.settings;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(declared, key)) issues.push({ path: [key], message: `unknown setting (known: ${Object.keys(declared).join(', ') || 'none'})` });
  }
  for (const [name, setting] of Object.entries(declared)) {
    const raw = given[name];
    if (raw === undefined || raw === null || raw === '') {
      if (setting.default !== undefined) values[name] = setting.default;
      else if (setting.required === true) issues.push({ path: [name], message: 'required' });
      continue;
    }
    const coerced = coerce(setting.type, raw);
    if ('message' in coerced) {
      issues.push({ path: [name], message: coerced.message });
      continue;
    }
    if (setting.pattern !== undefined && typeof coerced.value === 'string' && !new RegExp(`^(?:${setting.pattern})$`, 'u').test(coerced.value)) {
      issues.push({ path: [name], message: `does not match ${setting.pattern}` });
      continue;
    }
    values[name] = coerced.value;
  }
  return { values, issues };
}

/** The issues of a destination's settings (empty = valid), e.g. `{ path: ['pixelId'], message: 'required' }`. */
export function validateSettings(template: CompiledTemplate, settings: unknown): SettingsIssue[] {
  return resolveSettings(template, settings).issues;
}

/** Why an endpoint override is unusable, or undefined when it is fine. */
export function validateEndpoint(endpoint: unknown): string | undefined {
  if (typeof endpoint !== 'string') return 'expected a URL string';
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return 'not an absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http or https URL';
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.search !== '' || url.hash !== '') return 'must not have a query string or fragment (the rendered query string is kept)';
  return undefined;
}

function readRef(envelope: Record<string, unknown>, item: Record<string, unknown>, ref: FieldRef): unknown {
  return getDotted(ref.target === 'envelope' ? envelope : item, ref.segments);
}

function findRule(rules: readonly CompiledRule[], event: Record<string, unknown>): CompiledRule | undefined {
  for (const rule of rules) {
    if (rule.types !== undefined && !rule.types.has(event.type as never)) continue;
    if (rule.events !== undefined && (typeof event.event !== 'string' || !rule.events.has(event.event))) continue;
    return rule;
  }
  return undefined;
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return String(value);
  return undefined;
}

/**
 * Append an object's scalar fields as query parameters (booleans as 1/0, as query-string protocols
 * such as GA4's spell flags). With `nested`, object fields are flattened with dots
 * (`{ep: {value: 1}}` → `ep.value=1`); without it they are left out, so an envelope can carry data
 * for the headers (a user agent, say) that is not a parameter. Arrays are left out either way:
 * there is no one spelling for them.
 */
function appendParams(params: URLSearchParams, fields: Record<string, unknown>, nested: boolean, prefix = '', depth = 0): void {
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'boolean') params.append(prefix + key, value ? '1' : '0');
    else if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) params.append(prefix + key, String(value));
    else if (nested && depth < 4 && isPlainRecord(value)) appendParams(params, value, nested, `${prefix}${key}.`, depth + 1);
  }
}

/** One item as a URL-encoded line (`en=page_view&ep.x=1`); a non-object item is an empty line. */
function lineOf(item: unknown): string {
  const params = new URLSearchParams();
  if (isPlainRecord(item)) appendParams(params, item, true);
  return params.toString();
}

/** Bind a template to one destination instance. Throws ConfigError when settings or endpoint are invalid. */
export function bindDestination(options: BindOptions): BoundDestination {
  const { id, template } = options;
  const { values, issues } = resolveSettings(template, options.settings);
  if (issues.length > 0) {
    const list = issues.map((i) => `${['settings', ...i.path].join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`destination "${id}" (${template.id}): ${list}`, { details: issues });
  }
  let endpoint: URL | undefined;
  if (options.endpoint !== undefined) {
    const problem = validateEndpoint(options.endpoint);
    if (problem !== undefined) throw new ConfigError(`destination "${id}" (${template.id}): endpoint: ${problem}`);
    endpoint = new URL(options.endpoint);
  }
  const settings: Readonly<Record<string, SettingValue>> = Object.freeze(values);
  const bound = template.definition.auth === undefined ? undefined : bindAuth(template.definition.auth, settings);
  if (bound !== undefined && 'issue' in bound) throw new ConfigError(`destination "${id}" (${template.id}): ${bound.issue}`);
  const secretValues = Object.entries(template.definition.settings)
    .filter(([name, s]) => s.secret === true && Object.hasOwn(settings, name))
    .map(([name]) => String(settings[name]))
    .filter((v) => v !== '');
  const redactionNames = Object.freeze([...template.redactions.keys()]);
  const { request, rules, into, limits } = template;
  const lines = request.format === 'urlencoded-lines';
  // Conservative: any path or `$` placeholder in the request mappings means they may read the body.
  // Line bodies are encoded from the items themselves.
  const needsItems = into === undefined || lines || /"@(?:path|arrayPath)"|\{\{\s*\$/.test(JSON.stringify(template.definition.request));

  // A URL and headers that read nothing of the event (GA4's: the endpoint and two settings) are the
  // same for every request: built once rather than parsed and re-serialised per request, which for
  // one request per client was a fifth of what building a request cost.
  const staticUrl = !lines && !request.url.readsEvent && request.query.every(([, m]) => !m.readsEvent);
  const staticHeaders = request.headers.every(([, m]) => !m.readsEvent);
  let staticHref: string | undefined;
  let fixedHeaders: Readonly<Record<string, string>> | undefined;

  function fail(messageId: string, message: string, details?: unknown): RenderedEvent {
    return { ok: false, kind: 'error', error: new RenderError(`${id} (${template.id}): ${message}`, { details }), messageId };
  }

  function render(event: Event, redactions: readonly string[]): RenderedEvent {
    const record: Record<string, unknown> = isPlainRecord(event) ? event : {};
    const messageId = typeof record.messageId === 'string' ? record.messageId : '';
    try {
      // Fail closed: a redaction the template cannot apply means the event must not go out unredacted.
      for (const name of redactions) {
        if (!template.redactions.has(name)) return { ok: false, kind: 'skip', reason: `redaction_unavailable:${name}`, messageId };
      }
      const rule = findRule(rules, record);
      if (rule === undefined) return { ok: false, kind: 'skip', reason: `no_mapping:${String(record.type)}`, messageId };
      if (rule.skip !== undefined && isPresent(rule.skip.when.evaluate(event, settings))) {
        return { ok: false, kind: 'skip', reason: rule.skip.reason, messageId };
      }
      const at = `mappings[${rule.index}]`;
      const renderedEnvelope = rule.envelope === undefined ? {} : rule.envelope.evaluate(event, settings);
      if (!isPlainRecord(renderedEnvelope)) return fail(messageId, `${at}.envelope did not render to an object`);
      const renderedItem = rule.event.evaluate(event, settings);
      if (!isPlainRecord(renderedItem)) return fail(messageId, `${at}.event did not render to an object`);
      let envelope: Record<string, unknown> = renderedEnvelope;
      let item: Record<string, unknown> = renderedItem;
      for (const name of redactions) {
        const redaction = template.redactions.get(name);
        if (redaction === undefined) continue;
        for (const ref of redaction.remove) {
          if (ref.target === 'envelope') envelope = withoutDotted(envelope, ref.segments);
          else item = withoutDotted(item, ref.segments);
        }
        for (const ref of redaction.transform) {
          const current = readRef(envelope, item, ref);
          if (current === undefined) continue;
          const changed = applyTransform(ref.fn, current);
          // A value the transform cannot convert is removed, never sent as it was.
          if (ref.target === 'envelope') envelope = changed === undefined ? withoutDotted(envelope, ref.segments) : withDotted(envelope, ref.segments, changed);
          else item = changed === undefined ? withoutDotted(item, ref.segments) : withDotted(item, ref.segments, changed);
        }
        for (const ref of redaction.set) {
          if (ref.target === 'envelope') envelope = withDotted(envelope, ref.segments, ref.value);
          else item = withDotted(item, ref.segments, ref.value);
        }
      }
      for (const ref of rule.required) {
        if (!isPresent(readRef(envelope, item, ref))) {
          return fail(messageId, `${at}: required field "${ref.source}" is absent`, { field: ref.source });
        }
      }
      for (const ref of rule.patterns) {
        const value = readRef(envelope, item, ref);
        if (value === undefined) continue;
        const text = scalarText(value);
        // The value is not quoted in the message: it may be personal data.
        if (text === undefined || !ref.regex.test(text)) {
          return fail(messageId, `${at}: field "${ref.source}" does not match ${ref.regex.source}`, { field: ref.source });
        }
      }
      // Last, on exactly what would be sent (after redaction): the vendor's documented limits.
      const broken = template.vendorRules?.check(envelope, item, Date.parse(event.receivedAt));
      if (broken !== undefined) return { ok: false, kind: 'vendor_rule', rule: broken.rule, path: broken.path, messageId };
      const groupKey = JSON.stringify(envelope);
      if (request.idempotencyKey !== undefined) {
        const key = scalarText(getDotted(item, request.idempotencyKey));
        if (key !== undefined && key !== '') return { ok: true, groupKey, envelope, item, idempotencyKey: key, messageId };
      }
      return { ok: true, groupKey, envelope, item, messageId };
    } catch (err) {
      return { ok: false, kind: 'error', error: new RenderError(`${id} (${template.id}): render failed`, { cause: err }), messageId };
    }
  }

  function buildRequest(envelope: Record<string, unknown>, items: unknown[], itemJson?: ItemsJson): VendorRequest {
    if (items.length === 0) throw new InternalError(`${id}: buildRequest needs at least one item`);
    if (items.length > limits.maxEvents) throw new InternalError(`${id}: ${items.length} items exceed maxEvents ${limits.maxEvents}`);
    // With the items' JSON at hand the body is spliced from it (see bodyText); the items
    // themselves may then be placeholders, and are parsed back only where something reads them.
    const splice = into !== undefined && itemJson !== undefined && itemJson.count === items.length && !Object.hasOwn(envelope, into);
    if (!splice && !needsItems && itemJson !== undefined && itemJson.count === items.length) items = items.map((_, i) => JSON.parse(itemJson.item(i)) as unknown);
    let body: Record<string, unknown>;
    if (lines) {
      // The request mappings see the envelope: the batch shares it, its scalars are the query.
      body = envelope;
    } else if (into !== undefined) {
      body = { ...envelope, [into]: splice && !needsItems ? [] : items };
    } else {
      const item = items[0];
      body = isPlainRecord(item) ? { ...envelope, ...item } : { ...envelope };
    }
    const href = staticUrl ? (staticHref ??= urlOf(body, envelope)) : urlOf(body, envelope);
    const headers: Record<string, string> = staticHeaders ? { ...(fixedHeaders ??= headersOf(body)) } : headersOf(body);
    if (request.method === 'GET') return { method: request.method, url: href, headers };
    if (lines) {
      headers['content-type'] ??= 'text/plain;charset=UTF-8';
      return { method: request.method, url: href, headers, body: items.map(lineOf).join('\n') };
    }
    headers['content-type'] ??= 'application/json';
    return { method: request.method, url: href, headers, body: splice ? splicedBody(envelope, itemJson) : JSON.stringify(body) };
  }

  function urlOf(body: Record<string, unknown>, envelope: Record<string, unknown>): string {
    const rendered = request.url.evaluate(body, settings);
    if (typeof rendered !== 'string') throw new RenderError(`${id} (${template.id}): request.url did not render to a string`);
    let url: URL;
    try {
      url = new URL(rendered);
    } catch {
      throw new RenderError(`${id} (${template.id}): request.url did not render to an absolute URL`);
    }
    if (endpoint !== undefined) {
      const target = new URL(endpoint.href);
      target.search = url.search;
      url = target;
    }
    if (lines) appendParams(url.searchParams, envelope, false);
    for (const [name, mapping] of request.query) {
      const value = mapping.evaluate(body, settings);
      for (const element of Array.isArray(value) ? value : [value]) {
        const text = scalarText(element);
        if (text !== undefined) url.searchParams.append(name, text);
      }
    }
    return url.href;
  }

  function headersOf(body: Record<string, unknown>): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [name, mapping] of request.headers) {
      const text = scalarText(mapping.evaluate(body, settings));
      if (text === undefined) continue;
      // Header values may come from event data; CR/LF would let it inject headers.
      if (/[\r\n\0]/.test(text)) throw new RenderError(`${id} (${template.id}): header "${name}" contains a line break`);
      headers[name] = text;
    }
    return headers;
  }

  /**
   * The body from the envelope and the items' JSON: `{...envelope, [into]: items}`, items last.
   * Bytes, not text: decoding a batch of 1,000 events into a string only for undici to encode it
   * again cost more than the rest of building the request.
   */
  function splicedBody(envelope: Record<string, unknown>, itemJson: ItemsJson): Buffer {
    const head = JSON.stringify({ ...envelope, [into!]: 0 });
    return Buffer.concat([Buffer.from(`${head.slice(0, -2)}[`), itemJson.joined, CLOSE_ITEMS]);
  }

  /** The template's test mode on one rendered event: the code and the fixed fields set, as a redaction's `set` does. */
  function applyTestMode(rendered: Extract<RenderedEvent, { ok: true }>, code: string | undefined, receivedAt: number): Extract<RenderedEvent, { ok: true } | { kind: 'vendor_rule' }> {
    const mode = template.testMode!;
    let envelope = rendered.envelope;
    let item = isPlainRecord(rendered.item) ? rendered.item : undefined;
    const sets = mode.code === undefined || code === undefined ? mode.set : [...mode.set, { ...mode.code, value: code }];
    for (const ref of sets) {
      if (ref.target === 'envelope') envelope = withDotted(envelope, ref.segments, ref.value);
      else if (item !== undefined) item = withDotted(item, ref.segments, ref.value);
    }
    const broken = template.vendorRules?.check(envelope, item ?? {}, receivedAt);
    if (broken !== undefined) return { ok: false, kind: 'vendor_rule', rule: broken.rule, path: broken.path, messageId: rendered.messageId };
    return { ...rendered, envelope, item: item ?? rendered.item, groupKey: JSON.stringify(envelope) };
  }

  const destination: BoundDestination = {
    id,
    templateId: template.id,
    needsItems,
    limits,
    idempotent: request.idempotencyKey !== undefined,
    retrySafe: request.retrySafe,
    secretValues,
    transientResponse: template.transient,
    rejectsBatch: template.rejectsBatch,
    ...(template.answerRejected === undefined ? {} : { answerRejected: template.answerRejected }),
    ...(template.rowErrors === undefined ? {} : { rowErrors: template.rowErrors }),
    redactions: redactionNames,
    render,
    buildRequest,
  };
  if (bound !== undefined) destination.auth = bound.auth;
  if (template.testMode !== undefined) destination.testMode = { needsCode: template.testMode.code !== undefined, apply: applyTestMode };
  return destination;
}
