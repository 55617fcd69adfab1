/**
 * Template test cases: `templates/<id>/cases/*.json`. Each case renders one canonical event through
 * the template with the given settings (and redactions, endpoint) and states the single request it
 * must produce, or the skip reason, or the error code. Shared by `cases.test.ts` (vitest) and
 * `validate-cli.ts`, so `npm run validate:templates` also tells a template author whether the cases
 * still hold.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { TagwardenError } from '../errors.ts';
import { EVENT_TYPES, type Event, type EventType } from '../ingest/event.ts';
import { bindDestination } from './bind.ts';
import type { CompiledTemplate } from './load.ts';
import { joinPath } from './mapping/issue-path.ts';
import { bodyText, type VendorRequest } from './types.ts';
import { reasonText } from '../policy/reasons.ts';

const record = z.record(z.string(), z.unknown());

/** A canonical Event as written in a case; the empty objects and `receivedAt` may be left out. */
export const CaseEventSchema = z
  .object({
    messageId: z.string().min(1).describe('Unique event id'),
    type: z.enum(EVENT_TYPES as unknown as [EventType, ...EventType[]]).describe('Event type'),
    event: z.string().optional().describe('Track event name'),
    name: z.string().optional().describe('Page or screen name'),
    timestamp: z.string().describe('ISO 8601 event time'),
    receivedAt: z.string().optional().describe('ISO 8601 receive time; defaults to timestamp'),
    sentAt: z.string().optional().describe('ISO 8601 send time'),
    anonymousId: z.string().optional().describe('Visitor id'),
    userId: z.string().optional().describe('User id'),
    previousId: z.string().optional().describe('Previous id (alias)'),
    groupId: z.string().optional().describe('Group id'),
    context: record.default({}).describe('Event context'),
    properties: record.default({}).describe('Event properties'),
    traits: record.default({}).describe('User traits'),
    integrations: record.default({}).describe('Segment integrations object'),
  })
  .strict();

export const ExpectedRequestSchema = z
  .object({
    method: z.enum(['GET', 'POST', 'PUT']).describe('HTTP method'),
    url: z.string().describe('Full URL, query string included'),
    headers: z.record(z.string(), z.string()).optional().describe('Exact headers; omitted = not compared'),
    body: z.json().optional().describe('The body: parsed when JSON, else its text (urlencoded-lines); omitted for GET'),
  })
  .strict();

export const CaseSchema = z
  .object({
    description: z.string().min(1).describe('What the case shows'),
    event: CaseEventSchema.describe('The canonical event to render'),
    settings: record.default({}).describe('Destination settings'),
    redactions: z.array(z.string()).default([]).describe('Redaction rules the policy asks for'),
    endpoint: z.string().optional().describe('Endpoint override'),
    expect: z
      .union([
        z.object({ request: ExpectedRequestSchema }).strict(),
        z.object({ skip: z.string().min(1).describe('Skip reason') }).strict(),
        z
          .object({ drop: z.string().regex(/^vendor_rule:[a-z][a-z0-9_]*$/).describe('Drop reason: the rendered event breaks one of the template\'s vendor rules (vendor_rule:<id>)') })
          .strict(),
        z.object({ error: z.string().regex(/^TW_ERR_[A-Z_]+$/).describe('Error code') }).strict(),
      ])
      .describe('The single request, the skip reason, the vendor-rule drop reason, or the error code'),
  })
  .strict();

/**
 * A table of cases in one file: a base (event, settings, redactions, endpoint) and rows, each with
 * its description, fields that replace the base event's top-level fields, and its expectation. For
 * mappings that are themselves tables, such as event names onto a vendor's standard events.
 */
export const CaseTableSchema = z
  .object({
    description: z.string().min(1).describe('What the table shows; each row\'s description is appended'),
    event: CaseEventSchema.describe('The base event'),
    settings: record.default({}).describe('Destination settings'),
    redactions: z.array(z.string()).default([]).describe('Redaction rules the policy asks for'),
    endpoint: z.string().optional().describe('Endpoint override'),
    each: z
      .array(
        z
          .object({
            description: z.string().min(1).describe('What the row shows'),
            event: record.default({}).describe('Top-level event fields that replace the base event\'s (e.g. {"event": "Order Completed"})'),
            expect: CaseSchema.shape.expect,
          })
          .strict(),
      )
      .min(1)
      .max(200)
      .describe('The rows: one case each'),
  })
  .strict();

export type TemplateCase = z.output<typeof CaseSchema>;

export type CaseOutcome =
  | { request: { method: string; url: string; headers: Record<string, string>; body?: unknown } }
  | { skip: string }
  | { drop: string }
  | { error: string; message: string };

export interface LoadedCase {
  file: string;
  name: string;
  case?: TemplateCase;
  issues: string[];
}

function zodIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((i) => {
    let path = prefix;
    for (const key of i.path) path = joinPath(path, typeof key === 'number' ? key : String(key));
    return path === '' ? i.message : `${path}: ${i.message}`;
  });
}

/**
 * `{{template.apiVersion}}` in an expected URL is the template's apiVersion, so a version bump is
 * one line of template.json, not one per case.
 */
function withApiVersion(raw: unknown, apiVersion: string | undefined): unknown {
  if (apiVersion === undefined) return raw;
  if (typeof raw === 'string') return raw.replaceAll('{{template.apiVersion}}', apiVersion);
  if (Array.isArray(raw)) return raw.map((v: unknown) => withApiVersion(v, apiVersion));
  if (typeof raw === 'object' && raw !== null) return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, withApiVersion(v, apiVersion)]));
  return raw;
}

/** One file's cases: a single case, or each row of a case table (named `<file>[<row>]`). */
function casesOfFile(file: string, name: string, raw: unknown): LoadedCase[] {
  if (typeof raw !== 'object' || raw === null || !Object.hasOwn(raw, 'each')) {
    const parsed = CaseSchema.safeParse(raw);
    if (!parsed.success) return [{ file, name, issues: zodIssues(parsed.error) }];
    return [{ file, name, case: parsed.data, issues: [] }];
  }
  const table = CaseTableSchema.safeParse(raw);
  if (!table.success) return [{ file, name, issues: zodIssues(table.error) }];
  const { each, description, event, ...shared } = table.data;
  return each.map((row, i) => {
    const rowName = `${name}[${i}]`;
    const merged = CaseEventSchema.safeParse({ ...event, ...row.event });
    if (!merged.success) return { file, name: rowName, issues: zodIssues(merged.error, `each[${i}].event`) };
    return { file, name: rowName, case: { ...shared, description: `${description}: ${row.description}`, event: merged.data, expect: row.expect }, issues: [] };
  });
}

/**
 * Read and validate every `cases/*.json` of one template directory (sorted by file name).
 * `apiVersion` is the loaded template's (`definition.apiVersion`), for `{{template.apiVersion}}`.
 */
export function loadCases(templateDir: string, apiVersion: string | undefined): LoadedCase[] {
  const dir = join(templateDir, 'cases');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((name) => {
      const file = join(dir, name);
      let raw: unknown;
      try {
        raw = withApiVersion(JSON.parse(readFileSync(file, 'utf8')), apiVersion);
      } catch (err) {
        return [{ file, name, issues: [`invalid JSON: ${(err as Error).message}`] }];
      }
      return casesOfFile(file, name, raw);
    });
}

export function caseEvent(c: TemplateCase): Event {
  const { receivedAt, ...rest } = c.event;
  return { ...rest, receivedAt: receivedAt ?? c.event.timestamp };
}

/** Run one case: bind, render its event, build its single request. */
export function runCase(template: CompiledTemplate, c: TemplateCase): CaseOutcome {
  try {
    const destination = bindDestination({
      id: template.id,
      template,
      settings: c.settings,
      ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
    });
    const rendered = destination.render(caseEvent(c), c.redactions);
    if (!rendered.ok) {
      if (rendered.kind === 'skip') return { skip: rendered.reason };
      // What the pipeline decides for it (src/pipeline/render.ts): a drop with the rule's reason.
      if (rendered.kind === 'vendor_rule') return { drop: reasonText({ code: 'vendor_rule', rule: rendered.rule }) };
      const code = rendered.error instanceof TagwardenError ? rendered.error.code : 'TW_ERR_INTERNAL';
      return { error: code, message: rendered.error.message };
    }
    const request = destination.buildRequest(rendered.envelope, [rendered.item]);
    return {
      request: {
        method: request.method,
        url: request.url,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: caseBody(request) }),
      },
    };
  } catch (err) {
    const code = err instanceof TagwardenError ? err.code : 'TW_ERR_INTERNAL';
    return { error: code, message: (err as Error).message };
  }
}

/** A JSON body parsed, so cases compare structure; any other body (text lines) as its text. */
function caseBody(request: VendorRequest): unknown {
  const text = bodyText(request) ?? '';
  return (request.headers['content-type'] ?? '').startsWith('application/json') ? (JSON.parse(text) as unknown) : text;
}

/** The outcome reduced to what the case states (headers are compared only when the case gives them). */
export function comparableOutcome(c: TemplateCase, outcome: CaseOutcome): unknown {
  if ('request' in outcome && 'request' in c.expect && c.expect.request.headers === undefined) {
    const { headers: _headers, ...rest } = outcome.request;
    return { request: rest };
  }
  if ('error' in outcome) return { error: outcome.error };
  return outcome;
}

/** Run a case and compare; `ok` false carries what was expected and what came out. */
export function checkCase(template: CompiledTemplate, c: TemplateCase): { ok: boolean; expected: unknown; actual: unknown; outcome: CaseOutcome } {
  const outcome = runCase(template, c);
  const actual = comparableOutcome(c, outcome);
  return { ok: isDeepStrictEqual(actual, c.expect), expected: c.expect, actual, outcome };
}
