import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { DEFAULT_TEMPLATES_DIR, templateDirectories } from './load.ts';
import { TemplateSchema } from './template-schema.ts';

describe('TemplateSchema', () => {
  test.each(templateDirectories(DEFAULT_TEMPLATES_DIR))('shipped template %s matches the schema', (id) => {
    const raw: unknown = JSON.parse(readFileSync(join(DEFAULT_TEMPLATES_DIR, id, 'template.json'), 'utf8'));
    expect(TemplateSchema.safeParse(raw).error?.issues ?? []).toEqual([]);
  });

  test('every field carries a description (for the exported JSON Schema and editors)', () => {
    const schema = z.toJSONSchema(TemplateSchema, { io: 'input' });
    const missing: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const record = node as Record<string, unknown>;
      const properties = record.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [key, child] of Object.entries(properties ?? {})) {
        if (typeof child.description !== 'string') missing.push(`${path}.${key}`);
        walk(child, `${path}.${key}`);
      }
      for (const key of ['items', 'additionalProperties']) walk(record[key], `${path}[]`);
      for (const key of ['anyOf', 'oneOf', 'allOf']) {
        if (Array.isArray(record[key])) (record[key] as unknown[]).forEach((c) => walk(c, path));
      }
    };
    walk(schema, '$');
    expect(missing).toEqual([]);
  });

  test('objects are strict', () => {
    const base = JSON.parse(readFileSync(join(DEFAULT_TEMPLATES_DIR, 'webhook', 'template.json'), 'utf8')) as Record<string, unknown>;
    const withTypo = { ...base, request: { ...(base.request as object), idempotency_key: 'x' } };
    expect(TemplateSchema.safeParse(withTypo).error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', path: ['request'] });
  });

  test('testMode: docs and a code or fields to set, nothing else', () => {
    const base = JSON.parse(readFileSync(join(DEFAULT_TEMPLATES_DIR, 'webhook', 'template.json'), 'utf8')) as Record<string, unknown>;
    const docs = 'https://vendor.example/test-mode';
    const ok = (testMode: unknown) => TemplateSchema.safeParse({ ...base, testMode }).success;
    expect(ok({ docs, code: 'envelope.test_event_code' })).toBe(true);
    expect(ok({ docs, set: { 'params.debug_mode': true } })).toBe(true);
    expect(ok({ docs })).toBe(false);
    expect(ok({ docs, set: {} })).toBe(false);
    expect(ok({ code: 'test_event_code' })).toBe(false);
    expect(ok({ docs, code: 'a..b' })).toBe(false);
    expect(ok({ docs, code: 'x', mode: 'debug' })).toBe(false);
    expect(ok({ docs, set: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`f${i}`, 1])) })).toBe(false);
  });
});
