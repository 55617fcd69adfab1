import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ConfigError, InternalError, RenderError } from '../errors.ts';
import type { Event } from '../ingest/event.ts';
import { bindDestination, resolveSettings, validateEndpoint, validateSettings } from './bind.ts';
import { parseTemplate, type CompiledTemplate } from './load.ts';
import { bodyText, type ItemsJson } from './types.ts';

function template(overrides: Record<string, unknown> = {}): CompiledTemplate {
  return parseTemplate({
    id: 'demo',
    name: 'Demo',
    version: 1,
    description: 'bind tests',
    settings: {
      account: { type: 'string', required: true, pattern: '[a-z]+', description: 'account' },
      token: { type: 'string', required: true, secret: true, description: 'token' },
      retries: { type: 'number', default: 3, description: 'retries' },
      debug: { type: 'boolean', description: 'debug' },
    },
    request: {
      method: 'POST',
      url: { '@template': 'https://api.example.com/v1/{{settings.account}}/events?src=tw' },
      query: { token: { '@setting': 'token' }, tags: { '@path': '$.tags' } },
      headers: { 'x-client': { '@path': '$.client' } },
      idempotencyKey: 'id',
    },
    batch: { maxEvents: 3, maxBytes: 10_000, lingerMs: 50, into: 'items' },
    mappings: [
      {
        match: { type: 'track', event: ['Signed Up', 'Logged In'] },
        envelope: { client: { '@path': '$.anonymousId' } },
        event: { id: { '@path': '$.messageId' }, name: { '@path': '$.event' }, email: { '@path': '$.traits.email' }, tags: ['a', 'b'] },
        required: ['name', 'envelope.client'],
        patterns: { name: '^[A-Z][a-zA-Z ]+$' },
      },
      { match: { type: ['track', 'page'] }, event: { id: { '@path': '$.messageId' }, generic: true } },
    ],
    redact: {
      no_email: { remove: ['email'] },
      anon: { remove: ['envelope.client', 'email'], set: { 'envelope.consent.mode': 'denied', anonymous: true } },
      drop_name: { remove: ['name'] },
    },
    ...overrides,
  });
}

const settings = { account: 'acme', token: 'tok-123' };

function event(overrides: Partial<Event> = {}): Event {
  return {
    messageId: 'm-1',
    type: 'track',
    event: 'Signed Up',
    timestamp: '2024-05-01T12:00:00Z',
    receivedAt: '2024-05-01T12:00:00Z',
    anonymousId: 'anon-1',
    context: {},
    properties: {},
    traits: { email: 'a@example.com' },
    integrations: {},
    ...overrides,
  };
}

describe('settings', () => {
  test('required, unknown, wrong type and pattern issues, with paths relative to settings', () => {
    expect(validateSettings(template(), { account: 'ACME!', retries: 'many', debug: 'yes', extra: 1 })).toEqual([
      { path: ['extra'], message: expect.stringMatching(/^unknown setting/) },
      { path: ['account'], message: 'does not match [a-z]+' },
      { path: ['token'], message: 'required' },
      { path: ['retries'], message: 'expected a number' },
      { path: ['debug'], message: 'expected a boolean' },
    ]);
  });

  test('messages never contain the value (it may be a secret)', () => {
    const issues = validateSettings(template(), { account: 'SECRET-LOOKING', token: 42.5 });
    expect(JSON.stringify(issues)).not.toContain('SECRET-LOOKING');
  });

  test('defaults are applied; strings from ${ENV} references convert to declared types', () => {
    expect(resolveSettings(template(), { ...settings, debug: 'true' })).toEqual({
      values: { account: 'acme', token: 'tok-123', retries: 3, debug: true },
      issues: [],
    });
    expect(resolveSettings(template(), { ...settings, retries: '5' }).values.retries).toBe(5);
  });

  test('an unquoted YAML id: safe integers become strings, larger numbers are refused', () => {
    const t = template({ settings: { id: { type: 'string', required: true, description: 'id' } }, request: { method: 'POST', url: 'https://x.example' } });
    expect(resolveSettings(t, { id: 123456 }).values.id).toBe('123456');
    expect(validateSettings(t, { id: 2 ** 60 })[0]?.message).toMatch(/quote it/);
  });

  test('settings must be an object', () => {
    expect(validateSettings(template(), 'nope')).toEqual([{ path: [], message: 'expected an object' }]);
  });

  test('bindDestination throws a ConfigError naming each setting path', () => {
    expect(() => bindDestination({ id: 'd1', template: template(), settings: { account: 'acme' } })).toThrow(ConfigError);
    expect(() => bindDestination({ id: 'd1', template: template(), settings: { account: 'acme' } })).toThrow(/settings\.token: required/);
  });
});

describe('the bound destination', () => {
  const bound = bindDestination({ id: 'd1', template: template(), settings });

  test('exposes limits, idempotency, secret values and redaction names', () => {
    expect(bound).toMatchObject({
      id: 'd1',
      templateId: 'demo',
      limits: { maxEvents: 3, maxBytes: 10_000, lingerMs: 50 },
      idempotent: true,
      secretValues: ['tok-123'],
      redactions: ['no_email', 'anon', 'drop_name'],
    });
  });

  test('render: the first matching mapping wins; envelope, item, group key and idempotency key', () => {
    expect(bound.render(event(), [])).toEqual({
      ok: true,
      groupKey: '{"client":"anon-1"}',
      envelope: { client: 'anon-1' },
      item: { id: 'm-1', name: 'Signed Up', email: 'a@example.com', tags: ['a', 'b'] },
      idempotencyKey: 'm-1',
      messageId: 'm-1',
    });
    expect(bound.render(event({ event: 'Other' }), [])).toMatchObject({ ok: true, item: { id: 'm-1', generic: true } });
    expect(bound.render(event({ type: 'page', event: undefined }), [])).toMatchObject({ ok: true, item: { generic: true } });
  });

  test('no mapping and unknown redactions are skips with reasons', () => {
    expect(bound.render(event({ type: 'identify' }), [])).toEqual({ ok: false, kind: 'skip', reason: 'no_mapping:identify', messageId: 'm-1' });
    expect(bound.render(event(), ['no_email', 'nope'])).toEqual({ ok: false, kind: 'skip', reason: 'redaction_unavailable:nope', messageId: 'm-1' });
  });

  test('a mapping rule\'s skip: matched events for which "when" renders present are skipped with its reason', () => {
    const skipping = bindDestination({
      id: 'd',
      template: template({
        mappings: [
          {
            match: { type: 'track' },
            event: { id: { '@path': '$.messageId' }, name: { '@path': '$.event' } },
            required: ['name'],
            skip: { reason: 'automatic_event', when: { '@lookup': { value: { '@path': ['$.properties.send_as', '$.event'] }, table: { scroll: true } } } },
          },
        ],
      }),
      settings,
    });
    expect(skipping.render(event({ event: 'scroll' }), [])).toEqual({ ok: false, kind: 'skip', reason: 'automatic_event', messageId: 'm-1' });
    // The skip is decided before required fields are checked, and before redactions apply.
    expect(skipping.render(event({ event: 'scroll' }), ['drop_name'])).toMatchObject({ kind: 'skip', reason: 'automatic_event' });
    // A value that renders absent sends the event; here the event's own override asks for it.
    expect(skipping.render(event({ event: 'scroll', properties: { send_as: 'Scrolled' } }), [])).toMatchObject({ ok: true, item: { name: 'scroll' } });
    expect(skipping.render(event({ event: 'Signed Up' }), [])).toMatchObject({ ok: true });
  });

  test('a skip reason is a metrics-safe name, checked at load', () => {
    expect(() => template({ mappings: [{ event: {}, skip: { reason: 'Not Sent!', when: true } }] })).toThrow(/mappings\[0\]\.skip\.reason/);
    expect(() => template({ mappings: [{ event: {}, skip: { reason: 'x', when: { '@nope': 1 } } }] })).toThrow(/mappings\[0\]\.skip\.when: unknown directive @nope/);
  });

  test('redactions apply in order, removals before sets, without touching the event', () => {
    const e = event();
    const before = structuredClone(e);
    const rendered = bound.render(e, ['anon']);
    expect(rendered).toMatchObject({ ok: false, kind: 'error' });
    // `anon` removes envelope.client, which the mapping requires: the event cannot go out.
    const relaxed = bindDestination({
      id: 'd2',
      template: template({
        mappings: [{ envelope: { client: { '@path': '$.anonymousId' } }, event: { name: { '@path': '$.event' }, email: { '@path': '$.traits.email' } } }],
      }),
      settings,
    });
    expect(relaxed.render(e, ['anon'])).toMatchObject({
      ok: true,
      envelope: { consent: { mode: 'denied' } },
      item: { name: 'Signed Up', anonymous: true },
      groupKey: '{"consent":{"mode":"denied"}}',
    });
    expect(e).toEqual(before);
  });

  test('redacting a field of the event itself copies instead of mutating', () => {
    const passthrough = bindDestination({
      id: 'wh',
      template: template({ mappings: [{ event: { '@path': '$' } }], redact: { strip: { remove: ['traits.email', 'context.ip'] } } }),
      settings,
    });
    const e = event({ context: { ip: '203.0.113.1' } });
    const rendered = passthrough.render(e, ['strip']);
    expect(rendered).toMatchObject({ ok: true, item: { traits: {}, context: {} } });
    expect(e.traits.email).toBe('a@example.com');
    expect(e.context.ip).toBe('203.0.113.1');
  });

  test('required fields are checked after redaction; patterns on present values', () => {
    const dropped = bound.render(event(), ['drop_name']);
    expect(dropped.ok === false && dropped.kind === 'error' && dropped.error).toBeInstanceOf(RenderError);
    expect(dropped.ok === false && dropped.kind === 'error' && dropped.error.message).toMatch(/required field "name" is absent/);
    const bad = bound.render(event({ event: 'Logged In', anonymousId: undefined }), []);
    expect(bad.ok === false && bad.kind === 'error' && bad.error.message).toMatch(/"envelope.client" is absent/);
  });

  test('a pattern mismatch is a render error that does not quote the value', () => {
    const t = template({ mappings: [{ event: { name: { '@path': '$.event' } }, patterns: { name: '^[a-z_]+$' } }] });
    const rendered = bindDestination({ id: 'd', template: t, settings }).render(event({ event: 'secret@example.com' }), []);
    expect(rendered.ok === false && rendered.kind === 'error' && rendered.error.message).toMatch(/does not match/);
    expect(rendered.ok === false && rendered.kind === 'error' && rendered.error.message).not.toContain('secret@example.com');
  });

  test('render never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('track', 'page', 'identify', 42, null), fc.subarray(['no_email', 'anon', 'drop_name', 'x']), (junk, type, redactions) => {
        const candidates = [junk, { ...(typeof junk === 'object' && junk !== null && !Array.isArray(junk) ? junk : {}), type, event: 'Signed Up' }];
        for (const candidate of candidates) {
          const rendered = bound.render(candidate as unknown as Event, redactions);
          expect(typeof rendered.ok).toBe('boolean');
        }
      }),
    );
  });

  test('buildRequest: envelope + items array, query params appended, JSON content type', () => {
    const a = bound.render(event({ messageId: 'a' }), []);
    const b = bound.render(event({ messageId: 'b', traits: {} }), []);
    if (!a.ok || !b.ok) throw new Error('render failed');
    expect(a.groupKey).toBe(b.groupKey);
    const request = bound.buildRequest(a.envelope, [a.item, b.item]);
    expect(request).toEqual({
      method: 'POST',
      url: 'https://api.example.com/v1/acme/events?src=tw&token=tok-123',
      headers: { 'x-client': 'anon-1', 'content-type': 'application/json' },
      body: JSON.stringify({ client: 'anon-1', items: [a.item, b.item] }),
    });
  });

  test('buildRequest refuses no items or more than maxEvents', () => {
    expect(() => bound.buildRequest({}, [])).toThrow(InternalError);
    expect(() => bound.buildRequest({}, [{}, {}, {}, {}])).toThrow(InternalError);
  });

  test('header values with line breaks are refused', () => {
    expect(() => bound.buildRequest({ client: 'x\r\nx-evil: 1' }, [{}])).toThrow(RenderError);
  });
});

describe('unbatched and GET templates', () => {
  const getTemplate = template({
    request: {
      method: 'GET',
      url: 'https://pixel.example.com/collect',
      query: { ev: { '@path': '$.name' }, cid: { '@path': '$.client' }, ids: { '@path': '$.ids' }, tok: { '@setting': 'token' } },
    },
    batch: undefined,
    mappings: [{ envelope: { client: { '@path': '$.anonymousId' } }, event: { name: { '@path': '$.event' }, ids: [1, 2] } }],
  });

  test('one event per request; $ in url/query/headers is the item merged over the envelope; GET has no body', () => {
    const bound = bindDestination({ id: 'px', template: getTemplate, settings });
    expect(bound.limits).toEqual({ maxEvents: 1, maxBytes: 1_000_000, lingerMs: 0 });
    expect(bound.idempotent).toBe(false);
    const rendered = bound.render(event({ event: 'Signed Up' }), []);
    if (!rendered.ok) throw new Error('render failed');
    expect(rendered.idempotencyKey).toBeUndefined();
    expect(bound.buildRequest(rendered.envelope, [rendered.item])).toEqual({
      method: 'GET',
      url: 'https://pixel.example.com/collect?ev=Signed+Up&cid=anon-1&ids=1&ids=2&tok=tok-123',
      headers: {},
    });
    expect(() => bound.buildRequest(rendered.envelope, [rendered.item, rendered.item])).toThrow(InternalError);
  });

  test('a POST without batch sends the item merged over the envelope', () => {
    const t = template({ batch: undefined, request: { method: 'PUT', url: 'https://x.example/put', headers: { 'content-type': 'application/vnd.x+json' } } });
    const bound = bindDestination({ id: 'p', template: t, settings });
    expect(bound.buildRequest({ client: 'c', shared: 1 }, [{ shared: 2, own: true }])).toEqual({
      method: 'PUT',
      url: 'https://x.example/put',
      headers: { 'content-type': 'application/vnd.x+json' },
      body: '{"client":"c","shared":2,"own":true}',
    });
  });
});

describe('urlencoded-lines requests (gtag collect format)', () => {
  const linesTemplate = template({
    request: {
      method: 'POST',
      format: 'urlencoded-lines',
      url: 'https://collect.example.com/g/collect',
      query: { tok: { '@setting': 'token' } },
      headers: { 'user-agent': { '@path': '$.http.ua' } },
    },
    batch: { maxEvents: 5, maxBytes: 10_000, lingerMs: 10 },
    mappings: [
      {
        envelope: { cid: { '@path': '$.anonymousId' }, flag: true, off: false, http: { ua: { '@path': '$.context.userAgent' } }, list: [1, 2] },
        event: { en: { '@path': '$.event' }, ep: { note: { '@path': '$.properties.note' } }, epn: { n: 2.5 }, deep: { a: { b: { c: { d: { e: 'too deep' } } } } } },
      },
    ],
    redact: {
      unknown: { remove: ['envelope.cid'], transform: { 'envelope.ip': 'truncateIp', 'envelope.bad': 'truncateIp', 'envelope.none': 'upper' }, set: { 'envelope.gcs': 'G100' } },
    },
  });

  test('envelope scalars in the query, one line per item, nested objects flattened with dots', () => {
    const bound = bindDestination({ id: 'g', template: linesTemplate, settings });
    expect(bound.needsItems).toBe(true);
    const a = bound.render(event({ event: 'page_view', context: { userAgent: 'UA/1' }, properties: { note: 'a&b\nen=forged' } }), []);
    const b = bound.render(event({ event: 'scroll', context: { userAgent: 'UA/1' } }), []);
    if (!a.ok || !b.ok) throw new Error('render failed');
    expect(a.groupKey).toBe(b.groupKey);
    const req = bound.buildRequest(a.envelope, [a.item, b.item]);
    expect(req.url).toBe('https://collect.example.com/g/collect?cid=anon-1&flag=1&off=0&tok=tok-123');
    expect(req.headers).toEqual({ 'user-agent': 'UA/1', 'content-type': 'text/plain;charset=UTF-8' });
    // A line break in a value is encoded: an event cannot forge a second hit. Nesting deeper than
    // four levels is left out.
    expect(bodyText(req)).toBe('en=page_view&ep.note=a%26b%0Aen%3Dforged&epn.n=2.5\nen=scroll&epn.n=2.5');
  });

  test('redaction transforms change present values and remove what they cannot convert', () => {
    const bound = bindDestination({ id: 'g', template: template({ ...linesTemplate.definition, mappings: [{ envelope: { cid: { '@path': '$.anonymousId' }, ip: { '@path': '$.context.ip' }, bad: 'not-an-ip' }, event: { en: 'x' } }] }), settings });
    const r = bound.render(event({ context: { ip: '198.51.100.23' } }), ['unknown']);
    if (!r.ok) throw new Error('render failed');
    expect(r.envelope).toEqual({ ip: '198.51.100.0', gcs: 'G100' });
  });

  test('the format needs POST and no batch.into', () => {
    expect(() => template({ request: { method: 'GET', format: 'urlencoded-lines', url: 'https://x.example/' }, batch: undefined })).toThrow(/urlencoded-lines needs method POST/);
    expect(() => template({ request: { method: 'POST', format: 'urlencoded-lines', url: 'https://x.example/' } })).toThrow(/one item per line/);
  });
});

describe('endpoint override', () => {
  test('replaces origin and path, keeps the rendered query string and the query parameters', () => {
    const bound = bindDestination({ id: 'd1', template: template(), settings, endpoint: 'http://127.0.0.1:9999/stub/path' });
    const rendered = bound.render(event(), []);
    if (!rendered.ok) throw new Error('render failed');
    expect(bound.buildRequest(rendered.envelope, [rendered.item]).url).toBe('http://127.0.0.1:9999/stub/path?src=tw&token=tok-123');
  });

  test.each([
    ['http://127.0.0.1:9999/x', undefined],
    ['https://staging.example.com', undefined],
    ['not a url', 'not an absolute URL'],
    ['ftp://x.example/y', 'must be an http or https URL'],
    ['https://user:pw@x.example/', 'must not contain credentials'],
    ['https://x.example/p?x=1', expect.stringMatching(/query string/)],
    ['https://x.example/p#f', expect.stringMatching(/fragment/)],
    [42, 'expected a URL string'],
  ])('validateEndpoint(%j)', (endpoint, expected) => {
    expect(validateEndpoint(endpoint)).toEqual(expected);
  });

  test('an unusable endpoint is a ConfigError at bind', () => {
    expect(() => bindDestination({ id: 'd1', template: template(), settings, endpoint: 'https://x.example/?a=1' })).toThrow(ConfigError);
  });
});

/** The items' JSON as the batcher hands it over. */
function jsonOf(items: unknown[]): ItemsJson {
  const parts = items.map((i) => JSON.stringify(i));
  return { count: parts.length, joined: Buffer.from(parts.join(',')), item: (k) => parts[k] ?? '' };
}

describe('buildRequest with the items already serialised', () => {
  test('the body is byte for byte the one built from the items', () => {
    const dest = bindDestination({ id: 'd', template: template(), settings });
    fc.assert(
      fc.property(
        fc.array(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), { minLength: 1, maxLength: 3 }),
        fc.dictionary(fc.string().filter((k) => k !== 'items' && k !== '__proto__'), fc.jsonValue({ maxDepth: 2 })),
        (items, envelope) => {
          const plain = dest.buildRequest(envelope, items);
          const spliced = dest.buildRequest(envelope, items, jsonOf(items));
          expect(bodyText(spliced)).toBe(plain.body);
        },
      ),
    );
  });
});

describe('needsItems: batches that keep only the JSON of their items', () => {
  const settingsOnly = { method: 'POST', url: { '@template': 'https://api.example.com/v1/{{settings.account}}/events' }, query: { token: { '@setting': 'token' } } };

  test('shipped-style requests that read only settings do not need the items', () => {
    expect(bindDestination({ id: 'd', template: template({ request: settingsOnly }), settings }).needsItems).toBe(false);
    expect(bindDestination({ id: 'd', template: template(), settings }).needsItems).toBe(true);
    expect(bindDestination({ id: 'd', template: template({ request: settingsOnly, batch: undefined }), settings }).needsItems).toBe(true);
  });

  test('a URL and headers that read only settings are built once: each request gets that URL and a headers object of its own', () => {
    const request = { ...settingsOnly, headers: { 'x-account': { '@setting': 'account' } } };
    const dest = bindDestination({ id: 'd', template: template({ request }), settings });
    const first = dest.buildRequest({ client: 'a' }, [{ n: 1 }]);
    first.headers['x-mutated'] = 'by the caller';
    const second = dest.buildRequest({ client: 'b' }, [{ n: 2 }]);
    // The same as a destination bound afresh builds for its first request.
    const fresh = bindDestination({ id: 'd', template: template({ request }), settings }).buildRequest({ client: 'b' }, [{ n: 2 }]);
    expect(second).toEqual(fresh);
    expect(second.url).toBe(first.url);
    expect(second.headers).toEqual({ 'x-account': String(settings.account), 'content-type': 'application/json' });
  });

  test('placeholders plus JSON build the same request as the items themselves', () => {
    const dest = bindDestination({ id: 'd', template: template({ request: settingsOnly }), settings });
    fc.assert(
      fc.property(
        fc.array(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), { minLength: 1, maxLength: 3 }),
        fc.dictionary(fc.string().filter((k) => k !== '__proto__'), fc.jsonValue({ maxDepth: 2 })),
        (items, envelope) => {
          const plain = dest.buildRequest(envelope, items);
          const fromJson = dest.buildRequest(envelope, items.map(() => undefined), jsonOf(items));
          expect({ ...fromJson, body: bodyText(fromJson) }).toEqual(plain);
        },
      ),
    );
  });
});
