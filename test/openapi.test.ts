/**
 * The OpenAPI document of /api/v1 (src/api/openapi/): it describes exactly the routes the consent
 * API mounts (both ways: a route without an entry in src/api/openapi/routes.ts fails here, and so
 * does an entry without its route), its structure holds (3.1.0, info, paths, every operation with
 * answers, every $ref resolving, every path parameter declared), and it is served without a key,
 * cacheable, at GET /api/v1/openapi.json.
 */
import { readFileSync } from 'node:fs';
import type { Router } from 'express';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsentApi } from '../src/api/consent/mount.ts';
import { buildOpenApiDocument, documentedErrorCodes, openApiPath } from '../src/api/openapi/document.ts';
import { API_ROUTES } from '../src/api/openapi/routes.ts';
import { openDb } from '../src/store/open.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createPreviewRegistry } from '../src/preview/registry.ts';
import { previewRouter } from '../src/preview/routes.ts';
import { previewTokens } from '../src/preview/token.ts';
import { startTagwarden, testConfig } from './helpers.ts';

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  rawPath?: unknown;
  handle: { stack?: Layer[] };
}

/** Every (method, path) a router mounts, walking nested routers (their mount path prefixed). */
function mountedRoutes(router: { stack: Layer[] }, prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of router.stack) {
    if (layer.route !== undefined) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const p of paths) for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.push(`${m.toUpperCase()} ${prefix}${p}`);
    } else if (layer.handle.stack !== undefined) {
      const at = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...mountedRoutes(layer.handle as { stack: Layer[] }, prefix + at));
    }
  }
  return out;
}

type Json = Record<string, any>;

describe('OpenAPI document of /api/v1', () => {
  const doc: Json = buildOpenApiDocument();

  it('lists exactly the routes the consent API and preview mount under /api/v1, both ways', async () => {
    const db = await openDb('sqlite::memory:');
    const api = createConsentApi({
      config: testConfig({ site: { id: 'shop', categories: { analytics: {} } } }),
      db,
      log: pino({ level: 'silent' }),
      guard: () => (_req, _res, next) => next(),
      upstream: undefined,
      webhooks: false,
      onVisitorChanged: () => undefined,
    });
    try {
      const preview = previewRouter({ registry: createPreviewRegistry({ tokens: previewTokens('admin-key-0123456789'), clock: systemClock }), guard: () => (_req, _res, next) => next(), destinationIds: [], maxBodyBytes: 1024, clock: systemClock });
      const routers = [api.router, preview] as unknown as Array<Router & { stack: Layer[] }>;
      const mounted = new Set(routers.flatMap((r) => mountedRoutes(r)).filter((r) => r.split(' ')[1]!.startsWith('/api/v1/')));
      const listed = new Set(API_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`));
      expect(mounted.size).toBeGreaterThan(10);
      // A route mounted but not in src/api/openapi/routes.ts: add its op(...) line there.
      expect([...mounted].filter((r) => !listed.has(r)).sort()).toEqual([]);
      // An entry whose route is not mounted (renamed or removed): fix or drop the entry.
      expect([...listed].filter((r) => !mounted.has(r)).sort()).toEqual([]);
      // And the document has one operation per entry, at its OpenAPI path.
      const documented = Object.entries(doc.paths as Json).flatMap(([path, ops]) => Object.keys(ops as Json).map((m) => `${m.toUpperCase()} ${path}`));
      expect(documented.sort()).toEqual([...listed].map((r) => r.replace(/ .*/, (p) => ` ${openApiPath(p.slice(1))}`)).sort());
    } finally {
      await api.close();
      await db.close();
    }
  });

  it('is an OpenAPI 3.1 document: info, paths, operations with answers, declared path parameters, unique operation ids', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(Object.keys(doc.paths).length).toBe(new Set(API_ROUTES.map((r) => openApiPath(r.path))).size);
    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Json)) {
      expect(path).toMatch(/^\/api\/v1\//);
      expect(path).not.toContain(':');
      for (const [method, op] of Object.entries(ops as Json)) {
        expect(['get', 'post', 'put', 'patch', 'delete']).toContain(method);
        expect(typeof op.summary).toBe('string');
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        expect(Object.keys(op.responses).some((s) => /^2\d\d$/.test(s))).toBe(true);
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        const declared = (op.parameters as Json[]).filter((p) => p.in === 'path').map((p) => p.name);
        expect(declared.sort()).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort());
        for (const p of op.parameters as Json[]) expect(p.schema).toBeTypeOf('object');
      }
    }
  });

  it('every $ref resolves inside the document', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of new Set(refs)) {
      expect(ref).toMatch(/^#\//);
      let at: any = doc;
      for (const part of ref.slice(2).split('/')) at = at?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      expect(at, ref).toBeTypeOf('object');
    }
  });

  it('security: X-API-Key or Bearer with the route\'s scope; the document itself needs none', () => {
    expect(doc.components.securitySchemes).toEqual({
      apiKey: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    expect(doc.paths['/api/v1/consent'].post.security).toEqual([{ apiKey: ['consent:write'] }, { bearer: ['consent:write'] }]);
    expect(doc.paths['/api/v1/audit/verify'].get.security).toEqual([{ apiKey: ['audit:read'] }, { bearer: ['audit:read'] }]);
    expect(doc.paths['/api/v1/openapi.json'].get.security).toEqual([]);
    expect(doc.paths['/api/v1/consent'].post.responses['401']).toEqual({ $ref: '#/components/responses/Error401' });
  });

  it('parameters and bodies come from the routes\' zod schemas', () => {
    const verify = doc.paths['/api/v1/public/sites/{siteId}/consent/verify'].get;
    expect(verify.parameters).toEqual(expect.arrayContaining([{ name: 'siteId', in: 'path', required: true, schema: { type: 'string' } }, expect.objectContaining({ name: 'visitor_id', in: 'query', required: true })]));
    const check = doc.paths['/api/v1/subjects/{type}/{id}/check'].get;
    expect(check.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'type', in: 'path', schema: expect.objectContaining({ enum: ['visitor', 'user'] }) }),
        expect.objectContaining({ name: 'category', in: 'query', required: false, schema: expect.objectContaining({ maxLength: 140 }) }),
      ]),
    );
    const audit = doc.paths['/api/v1/audit'].get.parameters.map((p: Json) => p.name);
    expect(audit).toEqual(expect.arrayContaining(['subject', 'category', 'from', 'to', 'cursor', 'limit']));
    const push = doc.components.schemas[doc.paths['/api/v1/consent'].post.requestBody.content['application/json'].schema.$ref.split('/').pop()];
    expect(Object.keys(push.properties)).toEqual(expect.arrayContaining(['visitorId', 'userId', 'categories', 'validUntil', 'tcfString', 'consent']));
    expect(doc.paths['/api/v1/consent/import'].post.requestBody.content).toHaveProperty('text/csv');
    // Bloomreach's seed example nests the attributes in `properties` with the timestamp beside them.
    const [flat, nested] = doc.components.schemas.ConsentEvent.anyOf;
    expect(flat.required).toEqual(['action', 'category', 'timestamp']);
    expect(nested.properties.properties.required).toEqual(['action', 'category']);
    expect(flat.properties.valid_until.anyOf).toContainEqual({ const: 'unlimited' });
    expect(doc.paths['/api/v1/webhooks/{id}'].delete.responses['204']).toBeDefined();
  });

  it('the error shape {error: {code, message, details}} with the codes of src/errors.ts, each in docs/errors.md', () => {
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message']);
    const errorsDoc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const code of documentedErrorCodes()) expect(errorsDoc).toContain(code);
    expect(doc.components.responses.Error400.content['application/json'].schema.allOf[1].properties.error.properties.code.enum).toEqual(['TW_ERR_VALIDATION', 'TW_ERR_MALFORMED_BODY']);
  });

  it('documents both webhook events', () => {
    expect(Object.keys(doc.webhooks)).toEqual(['consent.changed', 'consent.expired']);
    expect(doc.components.schemas.WebhookPayload.properties.type.enum).toEqual(['consent.changed', 'consent.expired']);
  });
});

describe('GET /api/v1/openapi.json', () => {
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let db: Awaited<ReturnType<typeof openDb>>;
  beforeAll(async () => {
    db = await openDb('sqlite::memory:');
    tw = await startTagwarden(testConfig({ site: { id: 'shop', categories: { analytics: {} } } }), undefined, { db, webhooks: false });
  });
  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  it('answers without an API key, cacheable, with an ETag that a revalidation matches (304)', async () => {
    const res = await fetch(`${tw.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=3600');
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const body = (await res.json()) as Json;
    expect(body).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
    const again = await fetch(`${tw.url}/api/v1/openapi.json`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    // The other routes still want a key.
    expect((await fetch(`${tw.url}/api/v1/audit/verify`)).status).toBe(401);
  });
});
