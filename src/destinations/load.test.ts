import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TemplateError } from '../errors.ts';
import { compileTemplate, DEFAULT_TEMPLATES_DIR, inspectTemplates, loadTemplate, loadTemplates, parseTemplate } from './load.ts';

/** A small valid template; tests override parts of it. */
function minimalTemplate(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'mini',
    name: 'Mini',
    version: 1,
    description: 'test template',
    settings: { key: { type: 'string', required: true, description: 'a key' } },
    request: { method: 'POST', url: { '@template': 'https://api.example.com/{{settings.key}}' } },
    mappings: [{ event: { name: { '@path': '$.event' } } }],
    ...overrides,
  };
}

const root = mkdtempSync(join(tmpdir(), 'tw-templates-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function writeTemplates(name: string, files: Record<string, unknown>): string {
  const dir = join(root, name);
  for (const [id, content] of Object.entries(files)) {
    mkdirSync(join(dir, id), { recursive: true });
    if (content !== undefined) writeFileSync(join(dir, id, 'template.json'), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

describe('compileTemplate', () => {
  test('a valid template compiles with defaults', () => {
    const result = compileTemplate(minimalTemplate());
    expect(result.issues).toEqual([]);
    expect(result.template?.limits).toEqual({ maxEvents: 1, maxBytes: 1_000_000, lingerMs: 0 });
    expect(result.template?.into).toBeUndefined();
  });

  test.each([
    ['missing name', { name: undefined }, 'name', /expected string/i],
    ['unknown top-level key', { extra: true }, '', /Unrecognized key: "extra"/],
    ['bad method', { request: { method: 'PATCH', url: 'https://x' } }, 'request.method', /GET|POST/],
    ['setting default of the wrong type', { settings: { n: { type: 'number', default: 'x', description: 'd' } } }, 'settings.n.default', /must be a number/],
    ['invalid setting pattern', { settings: { s: { type: 'string', pattern: '(', description: 'd' } } }, 'settings.s.pattern', /invalid regular expression/],
    ['setting without description', { settings: { s: { type: 'string' } } }, 'settings.s.description', /expected string/i],
    ['unknown setting field', { settings: { s: { type: 'string', description: 'd', hidden: true } } }, 'settings.s', /Unrecognized key/],
    ['batching without into', { batch: { maxEvents: 10, maxBytes: 1000, lingerMs: 0 } }, 'batch.maxEvents', /needs batch.into/],
    ['GET with into', { request: { method: 'GET', url: 'https://x' }, batch: { maxEvents: 10, maxBytes: 1000, lingerMs: 0, into: 'data' } }, 'batch.into', /no body/],
    ['empty mappings', { mappings: [] }, 'mappings', /too small|>=1/i],
    ['bad match type', { mappings: [{ match: { type: 'click' }, event: {} }] }, 'mappings[0].match.type', /invalid/i],
    ['forbidden redaction path', { redact: { r: { remove: ['user.__proto__'] } } }, 'redact.r.remove[0]', /not allowed/],
    ['bad required path', { mappings: [{ event: {}, required: ['a..b'] }] }, 'mappings[0].required[0]', /invalid path segment/],
    ['bad pattern regex', { mappings: [{ event: {}, patterns: { name: '[' } }] }, 'mappings[0].patterns.name', /invalid regular expression/],
    ['upper-case header name', { request: { method: 'POST', url: 'https://x', headers: { 'Content-Type': 'x' } } }, 'request.headers.Content-Type', /lowercase/],
    ['unknown retrySafe failure', { request: { method: 'POST', url: 'https://x', retrySafe: ['status_4xx'] } }, 'request.retrySafe[0]', /invalid option/i],
    ['retrySafe failure twice', { request: { method: 'POST', url: 'https://x', retrySafe: ['timeout', 'timeout'] } }, 'request.retrySafe', /at most once/],
    ['retrySafe with an idempotency key', { request: { method: 'POST', url: 'https://x', idempotencyKey: 'id', retrySafe: ['timeout'] } }, 'request.retrySafe', /without idempotencyKey/],
    ['retrySafe on a GET', { request: { method: 'GET', url: 'https://x', retrySafe: [] } }, 'request.retrySafe', /POST/],
  ])('%s', (_label, overrides, path, message) => {
    const result = compileTemplate(minimalTemplate(overrides));
    expect(result.template).toBeUndefined();
    expect(result.issues).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  test('mapping errors carry their JSON path', () => {
    const result = compileTemplate(
      minimalTemplate({ mappings: [{ event: { params: { value: { '@foo': 1 } } } }] }),
    );
    expect(result.issues).toEqual([{ path: 'mappings[0].event.params.value', message: expect.stringMatching(/^unknown directive @foo/) }]);
  });

  test('request url, query and headers are compiled too', () => {
    const result = compileTemplate(
      minimalTemplate({
        request: { method: 'POST', url: { '@setting': 'nope' }, query: { q: { '@bad': 1 } }, headers: { 'x-a': { '@path': 'x' } } },
      }),
    );
    expect(result.issues.map((i) => i.path)).toEqual(['request.url.@setting', 'request.query.q', 'request.headers.x-a.@path']);
  });

  test('schema and mapping problems are reported in the same run', () => {
    const result = compileTemplate(minimalTemplate({ version: 0, mappings: [{ event: { a: { '@nope': 1 } }, envelope: { b: { '@setting': 'missing' } } }] }));
    expect(result.issues.map((i) => i.path).sort()).toEqual(['mappings[0].envelope.b.@setting', 'mappings[0].event.a', 'version']);
  });

  test('the id must equal the directory name', () => {
    expect(compileTemplate(minimalTemplate(), 'x', 'other').issues).toEqual([{ path: 'id', message: 'id "mini" must equal the directory name "other"' }]);
  });

  test('parseTemplate throws a TemplateError listing every problem', () => {
    let caught: unknown;
    try {
      parseTemplate(minimalTemplate({ name: 3, mappings: [{ event: { x: { '@foo': 1 } } }] }), 'templates/mini/template.json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TemplateError);
    const message = (caught as TemplateError).message.split('\n');
    expect(message).toEqual([
      expect.stringMatching(/^templates\/mini\/template.json: name: /),
      'templates/mini/template.json: mappings[0].event.x: unknown directive @foo (known: @path, @setting, @template, @if, @arrayPath, @hash, @transform, @scalars, @merge, @lookup, @literal)',
    ]);
    expect((caught as TemplateError).code).toBe('TW_ERR_TEMPLATE');
  });
});

describe('request.retrySafe', () => {
  test('compiles to the set the retry policy reads; omitted is empty', () => {
    expect([...parseTemplate(minimalTemplate({ request: { method: 'POST', url: 'https://x', retrySafe: ['status_5xx', 'timeout'] } })).request.retrySafe]).toEqual(['status_5xx', 'timeout']);
    expect(parseTemplate(minimalTemplate()).request.retrySafe.size).toBe(0);
  });

  test('the GA4 templates declare nothing beyond refusals safe to resend (no deduplication key; docs/delivery.md)', () => {
    const shipped = loadTemplates(DEFAULT_TEMPLATES_DIR);
    for (const id of ['ga4', 'ga4-collect']) {
      expect(shipped.get(id)?.definition.request.retrySafe).toEqual([]);
      expect(shipped.get(id)?.request.idempotencyKey).toBeUndefined();
    }
  });
});

describe('successCode', () => {
  test('a 2xx whose code is not ok is a rejection, temporary by value or range; no body, no field or no rule is a success', () => {
    const t = parseTemplate(minimalTemplate({ successCode: { json: 'code', ok: [0], transient: [40100, { min: 50000, max: 59999 }] } }));
    const check = t.answerRejected!;
    const body = (o: unknown) => JSON.stringify(o);
    expect(check(200, body({ code: 0, message: 'OK' }))).toBeUndefined();
    expect(check(200, body({ code: 40002 }))).toBe('final');
    expect(check(200, body({ code: '40100' }))).toBe('final');
    expect(check(200, body({ code: 40100 }))).toBe('transient');
    expect(check(202, body({ code: 50002 }))).toBe('transient');
    expect(check(200, body({ code: 60000 }))).toBe('final');
    expect(check(200, body({ message: 'no code' }))).toBeUndefined();
    expect(check(200, body({ code: null }))).toBeUndefined();
    expect(check(200, 'OK')).toBeUndefined();
    expect(check(200, '{"code":')).toBeUndefined();
    expect(check(400, body({ code: 40002 }))).toBeUndefined();
    expect(parseTemplate(minimalTemplate()).answerRejected).toBeUndefined();
  });
});

describe('retryOn', () => {
  test('a JSON error body matching every path of a rule with its status is temporary; anything else is not', () => {
    const t = parseTemplate(minimalTemplate({ retryOn: [{ status: [400], json: { 'error.code': [4, 17], 'error.type': ['OAuthException'] } }, { status: [500], json: { 'error.is_transient': [true] } }] }));
    const body = (o: unknown) => JSON.stringify(o);
    expect(t.transient(400, body({ error: { code: 17, type: 'OAuthException' } }))).toBe(true);
    expect(t.transient(400, body({ error: { code: 17, type: 'Other' } }))).toBe(false);
    expect(t.transient(400, body({ error: { code: 100, type: 'OAuthException' } }))).toBe(false);
    expect(t.transient(403, body({ error: { code: 4, type: 'OAuthException' } }))).toBe(false);
    expect(t.transient(500, body({ error: { is_transient: true } }))).toBe(true);
    expect(t.transient(500, body({ error: { is_transient: 'true' } }))).toBe(false);
    expect(t.transient(400, 'rate limited')).toBe(false);
    expect(t.transient(400, '{"error":')).toBe(false);
    expect(parseTemplate(minimalTemplate()).transient(400, body({ error: { code: 4 } }))).toBe(false);
  });

  test('a response path is read as written, even one starting with "envelope"', () => {
    const t = parseTemplate(minimalTemplate({ retryOn: [{ status: [400], json: { 'envelope.code': [4] } }] }));
    expect(t.transient(400, JSON.stringify({ envelope: { code: 4 } }))).toBe(true);
    expect(t.transient(400, JSON.stringify({ code: 4 }))).toBe(false);
  });

  test("the shipped Meta template retries Meta's throttling and temporary errors, not a bad request", () => {
    const meta = loadTemplates(DEFAULT_TEMPLATES_DIR).get('meta-capi')!;
    expect(meta.transient(400, JSON.stringify({ error: { message: '(#4) Application request limit reached', type: 'OAuthException', code: 4, fbtrace_id: 'A' } }))).toBe(true);
    expect(meta.transient(400, JSON.stringify({ error: { code: 100, is_transient: true } }))).toBe(true);
    expect(meta.transient(400, JSON.stringify({ error: { message: 'Invalid parameter', type: 'OAuthException', code: 100, error_subcode: 2804050 } }))).toBe(false);
    expect(meta.transient(401, JSON.stringify({ error: { code: 190 } }))).toBe(false);
  });

  test('rules are checked at load', () => {
    expect(compileTemplate(minimalTemplate({ retryOn: [{ status: [200], json: { 'error.code': [1] } }] })).issues.map((i) => i.path)).toEqual(['retryOn[0].status[0]']);
    expect(compileTemplate(minimalTemplate({ retryOn: [{ status: [400], json: {} }] })).issues.map((i) => i.path)).toEqual(['retryOn[0].json']);
  });
});

describe('bisectOn', () => {
  const body = (v: unknown) => JSON.stringify(v);
  const batched = { batch: { maxEvents: 100, maxBytes: 100_000, lingerMs: 0, into: 'data' } };

  test('compiles to a predicate on status and JSON body, false without rules', () => {
    const t = parseTemplate(minimalTemplate({ ...batched, bisectOn: [{ status: [400, 422], json: { 'error.code': [100] } }] }));
    expect(t.rejectsBatch(400, body({ error: { code: 100 } }))).toBe(true);
    expect(t.rejectsBatch(422, body({ error: { code: 100 } }))).toBe(true);
    expect(t.rejectsBatch(400, body({ error: { code: 190 } }))).toBe(false);
    expect(t.rejectsBatch(403, body({ error: { code: 100 } }))).toBe(false);
    expect(t.rejectsBatch(400, 'Invalid parameter')).toBe(false);
    expect(parseTemplate(minimalTemplate(batched)).rejectsBatch(400, body({ error: { code: 100 } }))).toBe(false);
  });

  test("the shipped Meta template bisects Meta's invalid-parameter answer, not throttling or a bad token", () => {
    const meta = loadTemplates(DEFAULT_TEMPLATES_DIR).get('meta-capi')!;
    const invalid = { error: { message: 'Invalid parameter', type: 'OAuthException', code: 100, error_subcode: 2804016, is_transient: false, error_user_title: 'User Parameter Not Hashed', error_user_msg: 'The ct parameter is not hashed.', fbtrace_id: 'A' } };
    expect(meta.rejectsBatch(400, body(invalid))).toBe(true);
    expect(meta.transient(400, body(invalid))).toBe(false);
    expect(meta.rejectsBatch(400, body({ error: { code: 4, type: 'OAuthException' } }))).toBe(false);
    expect(meta.rejectsBatch(400, body({ error: { code: 190, type: 'OAuthException' } }))).toBe(false);
  });

  test('rules are checked at load: 4xx only, not the refusals 408 and 429, and only for batching templates', () => {
    const issues = (over: Record<string, unknown>) => compileTemplate(minimalTemplate(over)).issues.map((i) => i.path);
    expect(issues({ ...batched, bisectOn: [{ status: [500], json: { 'error.code': [100] } }] })).toEqual(['bisectOn[0].status[0]']);
    expect(issues({ ...batched, bisectOn: [{ status: [429], json: { 'error.code': [100] } }] })).toEqual(['bisectOn[0].status[0]']);
    expect(issues({ ...batched, bisectOn: [{ status: [400], json: {} }] })).toEqual(['bisectOn[0].json']);
    expect(issues({ ...batched, bisectOn: [] })).toEqual(['bisectOn']);
    expect(issues({ bisectOn: [{ status: [400], json: { 'error.code': [100] } }] })).toEqual(['bisectOn']);
  });
});

describe('loading from a directory', () => {
  test('the shipped templates load', () => {
    const templates = loadTemplates(DEFAULT_TEMPLATES_DIR);
    expect([...templates.keys()].sort()).toEqual(expect.arrayContaining(['ga4', 'meta-capi', 'webhook']));
  });

  test('all problems of all files, each with its file path', () => {
    const dir = writeTemplates('mixed', {
      good: minimalTemplate({ id: 'good' }),
      badjson: '{ "id": ',
      badmap: minimalTemplate({ id: 'badmap', mappings: [{ event: { a: { '@foo': 1 }, b: { '@path': '$.__proto__' } } }] }),
      wrongid: minimalTemplate({ id: 'something-else' }),
      empty: undefined,
    });
    const { templates, problems } = inspectTemplates(dir);
    expect([...templates.keys()]).toEqual(['good']);
    expect(problems.map((p) => [p.file.slice(dir.length + 1), p.issues.map((i) => i.path)])).toEqual([
      ['badjson/template.json', ['']],
      ['badmap/template.json', ['mappings[0].event.a', 'mappings[0].event.b.@path']],
      ['empty/template.json', ['']],
      ['wrongid/template.json', ['id']],
    ]);
    expect(() => loadTemplates(dir)).toThrow(TemplateError);
    try {
      loadTemplates(dir);
    } catch (err) {
      const lines = (err as Error).message.split('\n');
      expect(lines).toHaveLength(5);
      expect(lines[0]).toMatch(/badjson\/template\.json: invalid JSON/);
      expect(lines[1]).toMatch(/badmap\/template\.json: mappings\[0\]\.event\.a: unknown directive @foo/);
      expect(lines[3]).toMatch(/empty\/template\.json: missing template\.json/);
    }
  });

  test('loadTemplate reports a single file', () => {
    const dir = writeTemplates('single', { one: minimalTemplate({ id: 'one', version: -1 }) });
    expect(() => loadTemplate(join(dir, 'one', 'template.json'))).toThrow(/one\/template\.json: version: /);
  });

  test('a missing directory is a problem, not a crash', () => {
    expect(inspectTemplates(join(root, 'does-not-exist')).problems[0]?.issues[0]?.message).toBe('template directory not found');
  });
});
