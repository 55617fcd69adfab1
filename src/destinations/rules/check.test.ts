// Table tests of the vendor-rule checker: one row per rule kind and boundary, against the shipped
// GA4, Meta, Google Ads and TikTok rules where a template's mapping cannot produce the failing field (its parameter
// names are fixed, Meta's action_source is a constant), and inline rules for the edges.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DEFAULT_TEMPLATES_DIR } from '../load.ts';
import { TemplateSchema, VendorRulesSchema } from '../template-schema.ts';
import { compileVendorRules } from './check.ts';

function shippedRules(id: string): ReturnType<typeof compileVendorRules> {
  const raw: unknown = JSON.parse(readFileSync(join(DEFAULT_TEMPLATES_DIR, id, 'template.json'), 'utf8'));
  const rules = TemplateSchema.parse(raw).rules;
  if (rules === undefined) throw new TypeError(`${id} has no rules`);
  return compileVendorRules(rules);
}

const RECEIVED = Date.parse('2024-05-04T12:00:00Z');
const at = (iso: string): number => Date.parse(iso);
const params = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, 'v']));

describe('GA4 Measurement Protocol rules (templates/ga4)', () => {
  const ga4 = shippedRules('ga4');
  const ok = { name: 'purchase', timestamp_micros: at('2024-05-04T11:00:00Z') * 1000, params: { value: 1 } };
  test.each([
    ['a valid event', {}, ok, undefined],
    ['a 40-character name', {}, { ...ok, name: 'a'.repeat(40) }, undefined],
    ['a 41-character name', {}, { ...ok, name: 'a'.repeat(41) }, { rule: 'ga4_event_name', path: 'name' }],
    ['a name with a dash', {}, { ...ok, name: 'add-to-cart' }, { rule: 'ga4_event_name', path: 'name' }],
    ['a reserved name', {}, { ...ok, name: 'session_start' }, { rule: 'ga4_event_name', path: 'name' }],
    ['a reserved prefix', {}, { ...ok, name: 'firebase_x' }, { rule: 'ga4_event_name', path: 'name' }],
    ['a name that is not a string', {}, { ...ok, name: 7 }, { rule: 'ga4_event_name', path: 'name' }],
    ['25 parameters', {}, { ...ok, params: params(25) }, undefined],
    ['26 parameters', {}, { ...ok, params: params(26) }, { rule: 'ga4_param_count', path: 'params' }],
    ['a parameter name with a space', {}, { ...ok, params: { 'my value': 1 } }, { rule: 'ga4_param_name', path: 'params.my value' }],
    ['a 41-character parameter name', {}, { ...ok, params: { ['p'.repeat(41)]: 1 } }, { rule: 'ga4_param_name', path: `params.${'p'.repeat(41)}` }],
    ['a reserved parameter name', {}, { ...ok, params: { firebase_conversion: 1 } }, { rule: 'ga4_param_name', path: 'params.firebase_conversion' }],
    ['a reserved parameter prefix', {}, { ...ok, params: { ga_x: 1 } }, { rule: 'ga4_param_name', path: 'params.ga_x' }],
    ['an item parameter name with a dash', {}, { ...ok, params: { items: [{ item_id: 'a' }, { 'item-name': 'b' }] } }, { rule: 'ga4_item_param_name', path: 'params.items.1.item-name' }],
    ['a 100-character value', {}, { ...ok, params: { coupon: 'c'.repeat(100) } }, undefined],
    ['a 100-character value of multi-byte characters', {}, { ...ok, params: { coupon: '€'.repeat(100) } }, undefined],
    ['a 101-character value', {}, { ...ok, params: { coupon: 'c'.repeat(101) } }, { rule: 'ga4_param_value_length', path: 'params.coupon' }],
    ['a 1000-character page_location', {}, { ...ok, params: { page_location: 'u'.repeat(1000) } }, undefined],
    ['a 1001-character page_location', {}, { ...ok, params: { page_location: 'u'.repeat(1001) } }, { rule: 'ga4_param_value_length', path: 'params.page_location' }],
    ['a 101-character item value', {}, { ...ok, params: { items: [{ item_name: 'i'.repeat(101) }] } }, { rule: 'ga4_item_param_value_length', path: 'params.items.0.item_name' }],
    ['25 user properties', { user_properties: Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`u${i}`, { value: 'x' }])) }, ok, undefined],
    ['26 user properties', { user_properties: Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`u${i}`, { value: 'x' }])) }, ok, { rule: 'ga4_user_property_count', path: 'envelope.user_properties' }],
    ['a 25-character user property name', { user_properties: { ['u'.repeat(25)]: { value: 'x' } } }, ok, { rule: 'ga4_user_property_count', path: `envelope.user_properties.${'u'.repeat(25)}` }],
    ['a reserved user property name', { user_properties: { first_visit_time: { value: 'x' } } }, ok, { rule: 'ga4_user_property_count', path: 'envelope.user_properties.first_visit_time' }],
    ['a 36-character user property value', { user_properties: { tier: { value: 'v'.repeat(36) } } }, ok, undefined],
    ['a 37-character user property value', { user_properties: { tier: { value: 'v'.repeat(37) } } }, ok, { rule: 'ga4_user_property_value_length', path: 'envelope.user_properties.tier.value' }],
    ['timestamp_micros exactly 72 h old', {}, { ...ok, timestamp_micros: at('2024-05-01T12:00:00Z') * 1000 }, undefined],
    ['timestamp_micros 72 h and 1 s old', {}, { ...ok, timestamp_micros: at('2024-05-01T11:59:59Z') * 1000 }, { rule: 'ga4_timestamp_too_old', path: 'timestamp_micros' }],
    ['timestamp_micros as a digit string', {}, { ...ok, timestamp_micros: String(at('2024-05-01T11:59:59Z') * 1000) }, { rule: 'ga4_timestamp_too_old', path: 'timestamp_micros' }],
    ['timestamp_micros that is not a time', {}, { ...ok, timestamp_micros: 'yesterday' }, { rule: 'ga4_timestamp_too_old', path: 'timestamp_micros' }],
  ])('%s', (_name, envelope, item, expected) => {
    expect(ga4.check(envelope, item as Record<string, unknown>, RECEIVED)).toEqual(expected);
  });
});

describe('Meta Conversions API rules (templates/meta-capi)', () => {
  const meta = shippedRules('meta-capi');
  const seconds = (iso: string): number => Math.floor(at(iso) / 1000);
  const ok = { event_name: 'Purchase', event_time: seconds('2024-05-04T11:00:00Z'), action_source: 'website', event_source_url: 'https://shop.example.com/' };
  test.each([
    ['a valid event', ok, undefined],
    ['event_time exactly 7 days old', { ...ok, event_time: seconds('2024-04-27T12:00:00Z') }, undefined],
    ['event_time 7 days and 1 s old', { ...ok, event_time: seconds('2024-04-27T11:59:59Z') }, { rule: 'meta_event_time_too_old', path: 'event_time' }],
    ['event_time at the receive time', { ...ok, event_time: seconds('2024-05-04T12:00:00Z') }, undefined],
    ['event_time 60 s after it (a client clock a minute fast)', { ...ok, event_time: seconds('2024-05-04T12:01:00Z') }, undefined],
    ['event_time 61 s after it', { ...ok, event_time: seconds('2024-05-04T12:01:01Z') }, { rule: 'meta_event_time_in_future', path: 'event_time' }],
    ['an action_source Meta does not know', { ...ok, action_source: 'web' }, { rule: 'meta_action_source', path: 'action_source' }],
    ['a website event without event_source_url', { ...ok, event_source_url: undefined }, { rule: 'meta_event_source_url', path: 'event_source_url' }],
    ['a website event with an empty event_source_url', { ...ok, event_source_url: '' }, { rule: 'meta_event_source_url', path: 'event_source_url' }],
    ['a physical_store event without it', { ...ok, action_source: 'physical_store', event_source_url: undefined }, undefined],
  ])('%s', (_name, item, expected) => {
    expect(meta.check({}, item as Record<string, unknown>, RECEIVED)).toEqual(expected);
  });
});

describe('Google Ads click conversion rules (templates/google-ads)', () => {
  const ads = shippedRules('google-ads');
  const ok = { gclid: 'G-1', conversionDateTime: '2024-05-01 12:30:15+00:00', userIdentifiers: [{ hashedEmail: 'h' }] };
  const ids = (n: number): Array<Record<string, string>> => Array.from({ length: n }, (_, i) => ({ hashedEmail: `h${i}` }));
  test.each([
    ['a valid conversion', ok, undefined],
    ['a wbraid alone', { conversionDateTime: ok.conversionDateTime, wbraid: 'W-1' }, undefined],
    ['no click id', { conversionDateTime: ok.conversionDateTime }, { rule: 'gads_click_id', path: 'gclid' }],
    ['an empty gclid and no other', { gclid: '', conversionDateTime: ok.conversionDateTime }, { rule: 'gads_click_id', path: 'gclid' }],
    ['gclid and gbraid', { ...ok, gbraid: 'B-1' }, { rule: 'gads_click_id', path: 'gclid' }],
    ['gbraid and wbraid', { gbraid: 'B-1', wbraid: 'W-1', conversionDateTime: ok.conversionDateTime }, { rule: 'gads_click_id', path: 'gclid' }],
    ['a gbraid with userIdentifiers', { gbraid: 'B-1', conversionDateTime: ok.conversionDateTime, userIdentifiers: ids(1) }, { rule: 'gads_braid_user_identifiers', path: 'userIdentifiers' }],
    ['5 user identifiers', { ...ok, userIdentifiers: ids(5) }, undefined],
    ['6 user identifiers', { ...ok, userIdentifiers: ids(6) }, { rule: 'gads_user_identifier_count', path: 'userIdentifiers' }],
    ['a negative offset', { ...ok, conversionDateTime: '2024-05-01 12:30:15-08:00' }, undefined],
    ['an ISO 8601 time', { ...ok, conversionDateTime: '2024-05-01T12:30:15Z' }, { rule: 'gads_conversion_date_time', path: 'conversionDateTime' }],
    ['a time without its zone', { ...ok, conversionDateTime: '2024-05-01 12:30:15' }, { rule: 'gads_conversion_date_time', path: 'conversionDateTime' }],
  ])('%s', (_name, item, expected) => {
    expect(ads.check({ partialFailure: true }, item as Record<string, unknown>, RECEIVED)).toEqual(expected);
  });
});

describe('TikTok Events API rules (templates/tiktok-events)', () => {
  const tiktok = shippedRules('tiktok-events');
  const ok = { event: 'CompletePayment', properties: { currency: 'USD', content_type: 'product' } };
  test.each([
    ['a valid event', ok, undefined],
    ['no properties', { event: 'Pageview' }, undefined],
    ['a lower-case currency', { ...ok, properties: { ...ok.properties, currency: 'usd' } }, { rule: 'tiktok_currency', path: 'properties.currency' }],
    ['a four-letter currency', { ...ok, properties: { ...ok.properties, currency: 'EURO' } }, { rule: 'tiktok_currency', path: 'properties.currency' }],
    ['a numeric currency', { ...ok, properties: { ...ok.properties, currency: 978 } }, { rule: 'tiktok_currency', path: 'properties.currency' }],
    ['content_type product_group', { ...ok, properties: { ...ok.properties, content_type: 'product_group' } }, undefined],
    ['content_type products', { ...ok, properties: { ...ok.properties, content_type: 'products' } }, { rule: 'tiktok_content_type', path: 'properties.content_type' }],
  ])('%s', (_name, item, expected) => {
    expect(tiktok.check({ event_source: 'web' }, item as Record<string, unknown>, RECEIVED)).toEqual(expected);
  });
});

describe('the checker', () => {
  test('an unreadable receive time skips time windows (nothing to measure against)', () => {
    const rules = compileVendorRules(VendorRulesSchema.parse({ checks: [{ id: 't', kind: 'timeWindow', path: 'ts', unit: 'seconds', maxAgeSeconds: 1, description: 'd', docs: 'https://example.com/' }] }));
    expect(rules.check({}, { ts: 0 }, Number.NaN)).toBeUndefined();
    expect(rules.check({}, { ts: 0 }, 5000)).toEqual({ rule: 't', path: 'ts' });
  });

  test('absent fields pass every kind but requiredWhen; the first failing check is reported', () => {
    const rules = compileVendorRules(VendorRulesSchema.parse({
      checks: [
        { id: 'a', kind: 'name', path: 'n', maxLength: 1, description: 'd', docs: 'https://example.com/' },
        { id: 'b', kind: 'oneOf', path: 'o', values: ['x'], description: 'd', docs: 'https://example.com/' },
        { id: 'c', kind: 'maxLength', path: 'l.*', max: 1, description: 'd', docs: 'https://example.com/' },
      ],
    }));
    expect(rules.check({}, {}, 0)).toBeUndefined();
    expect(rules.check({}, { n: 'toolong', o: 'y' }, 0)).toEqual({ rule: 'a', path: 'n' });
    expect(rules.check({}, { o: 'y' }, 0)).toEqual({ rule: 'b', path: 'o' });
    expect(rules.check({}, { l: ['a', 'bb'] }, 0)).toEqual({ rule: 'c', path: 'l.1' });
  });

  test('maxItems, exactlyOne and absentWhen read the envelope too; non-arrays pass maxItems', () => {
    const docs = { description: 'd', docs: 'https://example.com/' };
    const rules = compileVendorRules(VendorRulesSchema.parse({
      checks: [
        { id: 'm', kind: 'maxItems', path: 'envelope.list', max: 1, ...docs },
        { id: 'x', kind: 'exactlyOne', path: 'a', others: ['envelope.b'], ...docs },
        { id: 'w', kind: 'absentWhen', path: 'c.*', when: { paths: ['envelope.b'] }, ...docs },
      ],
    }));
    expect(rules.check({ list: 'not an array' }, { a: 1 }, 0)).toBeUndefined();
    expect(rules.check({ list: [1, 2] }, { a: 1 }, 0)).toEqual({ rule: 'm', path: 'envelope.list' });
    expect(rules.check({ b: 1 }, { a: 1 }, 0)).toEqual({ rule: 'x', path: 'a' });
    expect(rules.check({ b: 1 }, { c: [null, 'y'] }, 0)).toEqual({ rule: 'w', path: 'c.1' });
    expect(rules.check({ b: 1 }, { c: [null, ''] }, 0)).toBeUndefined();
  });

  test('property: never throws on any JSON, whatever the kind; a failure names a check of the rules', () => {
    const docs = { description: 'd', docs: 'https://example.com/' };
    const rules = compileVendorRules(VendorRulesSchema.parse({
      checks: [
        { id: 'n', kind: 'name', path: 'a.*', pattern: '^x$', maxLength: 3, reserved: ['y'], reservedPrefixes: ['z'], ...docs },
        { id: 'k', kind: 'keys', path: '*', maxCount: 3, pattern: '^[a-z]+$', ...docs },
        { id: 'l', kind: 'maxLength', path: '*.*', max: 2, ...docs },
        { id: 't', kind: 'timeWindow', path: 'a', unit: 'seconds', maxAgeSeconds: 10, maxFutureSeconds: 10, ...docs },
        { id: 'o', kind: 'oneOf', path: 'b', values: ['x', 1, true], ...docs },
        { id: 'r', kind: 'requiredWhen', path: 'c', when: { path: 'envelope.d', equals: ['x'] }, ...docs },
        { id: 'm', kind: 'maxItems', path: '*', max: 2, ...docs },
        { id: 'x', kind: 'exactlyOne', path: 'a', others: ['b', 'envelope.c.*'], ...docs },
        { id: 'w', kind: 'absentWhen', path: '*.*', when: { paths: ['envelope.*'] }, ...docs },
      ],
    }));
    const ids = new Set(['n', 'k', 'l', 't', 'o', 'r', 'm', 'x', 'w']);
    const record = fc.dictionary(fc.string(), fc.jsonValue()) as fc.Arbitrary<Record<string, unknown>>;
    fc.assert(fc.property(record, record, fc.oneof(fc.integer(), fc.double()), (envelope, item, received) => {
      const failure = rules.check(envelope, item, received);
      expect(failure === undefined || ids.has(failure.rule)).toBe(true);
    }));
  });

  test('a wildcard walk is bounded (failing closed beyond the bound) and reads own fields only', () => {
    const rules = compileVendorRules(VendorRulesSchema.parse({ checks: [{ id: 'c', kind: 'maxLength', path: '*.*', max: 1, description: 'd', docs: 'https://example.com/' }] }));
    expect(rules.check({}, { a: Array.from({ length: 10_000 }, () => 'x') }, 0)).toBeUndefined();
    // Beyond 10,000 fields the check fails closed: the rest was never looked at.
    expect(rules.check({}, { a: Array.from({ length: 10_001 }, () => 'x') }, 0)).toEqual({ rule: 'c', path: '*.*' });
    expect(rules.check({}, JSON.parse('{"__proto__": {"x": "long"}}') as Record<string, unknown>, 0)).toEqual({ rule: 'c', path: '__proto__.x' });
  });

  test('lengths count code points: a text longer in UTF-16 units than the limit may still keep it', () => {
    const rules = compileVendorRules(VendorRulesSchema.parse({ checks: [{ id: 'c', kind: 'maxLength', path: 'a', max: 2, description: 'd', docs: 'https://example.com/' }] }));
    expect(rules.check({}, { a: '\u{1F600}\u{1F600}' }, 0)).toBeUndefined();
    expect(rules.check({}, { a: '\u{1F600}\u{1F600}x' }, 0)).toEqual({ rule: 'c', path: 'a' });
    expect(rules.check({}, { a: 'xy' }, 0)).toBeUndefined();
  });
});

describe('the rules block in template.json', () => {
  const base = JSON.parse(readFileSync(join(DEFAULT_TEMPLATES_DIR, 'ga4', 'template.json'), 'utf8')) as Record<string, unknown>;
  const rules = base.rules as Record<string, unknown>;
  const messages = (raw: unknown): string[] => (TemplateSchema.safeParse(raw).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

  test('batch.maxEvents may not exceed the documented maxEventsPerRequest', () => {
    expect(messages({ ...base, rules: { ...rules, maxEventsPerRequest: 20 } })).toEqual(['batch.maxEvents: batch.maxEvents 25 exceeds the vendor\'s rules.maxEventsPerRequest 20']);
  });
  test('batch.maxBytes must stay below maxRequestBytes (the envelope comes on top)', () => {
    expect(messages({ ...base, batch: { ...(base.batch as object), maxBytes: 130_000 } })[0]).toMatch(/^batch.maxBytes: rules.maxRequestBytes 130000 needs batch.maxBytes below it/);
  });
  test('rule ids are unique, kinds closed, paths checked', () => {
    const check = { id: 'x', kind: 'name', path: 'name', description: 'd', docs: 'https://example.com/' };
    expect(messages({ ...base, rules: { checks: [check, check] } })).toEqual(['rules.checks.1.id: duplicate rule id "x"']);
    expect(messages({ ...base, rules: { checks: [{ ...check, kind: 'script' }] } })[0]).toMatch(/^rules.checks.0.kind/);
    expect(messages({ ...base, rules: { checks: [{ ...check, path: 'a.__proto__' }] } })[0]).toMatch(/not allowed/);
    expect(messages({ ...base, rules: { checks: [{ ...check, id: 'Bad-Id' }] } })[0]).toMatch(/rule id/);
  });
});
