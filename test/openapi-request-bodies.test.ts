import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../src/api/keys.ts';
import type { Db } from '../src/store/db.ts';
import { forEachEngine } from './engines.ts';
import { post, startTagwarden, testConfig } from './helpers.ts';

/**
 * The OpenAPI document's request bodies against the real routes: requests taken from the seeds and
 * docs/consent-api.md, and requests the routes refuse for a reason a schema can state, are checked
 * against the schema the served /api/v1/openapi.json gives for that body, and sent. A body the
 * document calls valid must not be refused for its shape, and a body the route refuses for its
 * shape must not be valid by the document (an event whose event_type is not `consent`, seed
 * bloomreach-tracking-consent.txt, was valid by the document and refused by the route).
 *
 * `valid` below checks the JSON Schema keywords the document uses (draft 2020-12 subset: $ref,
 * anyOf, const, enum, type, properties, required, additionalProperties, propertyNames, items,
 * min/max items and lengths, pattern); the document's validity as OpenAPI 3.1 is test/openapi.test.ts's.
 */

type Json = any;

function valid(doc: Json, schema: Json, value: unknown): boolean {
  if (schema === true || schema === undefined) return true;
  if (schema === false) return false;
  if (typeof schema.$ref === 'string') return valid(doc, doc.components.schemas[schema.$ref.split('/').pop()], value);
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((s: Json) => valid(doc, s, value))) return false;
  if ('const' in schema && value !== schema.const) return false;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) return false;
  if (schema.type !== undefined) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
    if (!types.some((t) => t === kind || (t === 'number' && kind === 'integer'))) return false;
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return false;
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return false;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return false;
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return false;
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return false;
    if (schema.items !== undefined && !value.every((v) => valid(doc, schema.items, v))) return false;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!Object.hasOwn(o, r)) return false;
    for (const [k, v] of Object.entries(o)) {
      if (schema.propertyNames !== undefined && !valid(doc, schema.propertyNames, k)) return false;
      const own = schema.properties !== undefined && Object.hasOwn(schema.properties, k) ? schema.properties[k] : undefined;
      if (own !== undefined) {
        if (!valid(doc, own, v)) return false;
      } else if (schema.additionalProperties !== undefined && !valid(doc, schema.additionalProperties, v)) return false;
    }
  }
  return true;
}

const seedEvent = {
  customer_ids: { registered: 'user12345' },
  event_type: 'consent',
  timestamp: 1528114618,
  properties: { action: 'accept', category: 'weekly_newsletters_from_web', valid_until: 'unlimited', message: 'This consent was tracked from landing page' },
};

/** [path, body, whether the route takes it (2xx, or 404 for an unknown seq)] */
const SAMPLES: [string, unknown, boolean][] = [
  ['/api/v1/consent', { visitorId: 'v-123', userId: 'u-42', categories: { analytics: true, advertising: false }, timestamp: '2026-01-01T10:00:00Z', validUntil: 'unlimited', gcm: { ad_storage: 'denied' }, source: 'cmp', message: 'Cookie banner v3', geoCountry: 'DE' }, true],
  ['/api/v1/consent', { customUserId: 'anna', reference: 'Dealership', consentGiven: 'All', consentType: 'Dealership' }, true],
  ['/api/v1/consent', { visitorId: 'v-9', categories: { analytics: 'granted' } }, true],
  ['/api/v1/consent', { visitorId: 'v-9', gcm: { ad_storage: 'sometimes' } }, false],
  ['/api/v1/consent', { visitorId: 'v-9', geoCountry: 'de' }, false],
  ['/api/v1/consent/events', seedEvent, true],
  ['/api/v1/consent/events', [{ ...seedEvent, customer_ids: { email: 'ann@example.com' } }], true],
  ['/api/v1/consent/events', { events: [{ customer_id: 'c-1', action: 'reject', category: 'sms', timestamp: '2026-01-01T00:00:00Z', campaign: 'spring' }] }, true],
  ['/api/v1/consent/events', { ...seedEvent, properties: { ...seedEvent.properties, email: 'ann@example.com', source: 'page', identification: 'dab8a3d0d868126', identification_type: 'cookie' } }, true],
  ['/api/v1/consent/events', { ...seedEvent, event_type: 'double_opt_in' }, false],
  ['/api/v1/consent/events', { ...seedEvent, properties: { ...seedEvent.properties, category: 'has space' } }, false],
  ['/api/v1/consent/events/expire', { subject: 'user:user12345', category: 'weekly_newsletters_from_web' }, true],
  ['/api/v1/consent/events/expire', { seqs: [99_999] }, true],
  ['/api/v1/consent/events/expire', { seqs: [] }, false],
  ['/api/v1/consent/events/expire', { seqs: [1], extra: true }, false],
  ['/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', filters: { items: ['analytics'], sources: ['push'] } }, true],
  ['/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', filters: { customUserIds: ['anna'] } }, false],
  ['/api/v1/deliveries/dead/replay', { destinationId: 'ads' }, true],
  ['/api/v1/deliveries/dead/replay', { destinationId: 'not an id' }, false],
];

forEachEngine('OpenAPI request bodies and the routes agree', (engine) => {
  let db: Db;
  let tw: Awaited<ReturnType<typeof startTagwarden>>;
  let admin: string;
  let doc: Json;

  beforeAll(async () => {
    db = await engine.open();
    const config = testConfig({
      site: { id: 'shop', categories: { analytics: {}, advertising: {} } },
      api: { rateLimit: { perSecond: 1000, burst: 1000 }, webhooks: { allowPrivate: true } },
    });
    tw = await startTagwarden(config, undefined, { db, webhooks: false });
    admin = (await createApiKey(db, { label: 'admin', scopes: ['admin'] })).key;
    doc = await (await fetch(`${tw.url}/api/v1/openapi.json`)).json();
  });

  afterAll(async () => {
    await tw.close();
    await db.close();
  });

  it.each(SAMPLES.map(([path, body, ok], i) => ({ i, path, body, ok })))('sample $i: $path', async ({ path, body, ok }) => {
    const schema = doc.paths[path].post.requestBody.content['application/json'].schema;
    expect(valid(doc, schema, body), 'valid by the document').toBe(ok);
    const r = await post(`${tw.url}${path}`, body, { 'x-api-key': admin });
    if (ok) expect([200, 201, 404], JSON.stringify(r.body)).toContain(r.status);
    else expect(r.status, JSON.stringify(r.body)).toBe(400);
  });
});
