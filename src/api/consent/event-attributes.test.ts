import { describe, expect, it } from 'vitest';
import { attributeProblems, eventEvidence, EVENT_ATTRIBUTE_LIMITS } from './event-attributes.ts';
import { consentEventInput } from './inputs.ts';

const now = 1_700_000_000_123;
const ctx = { siteId: 's', subject: { type: 'user' as const, id: 'u1' }, source: 'private_api', now };
const base = { action: 'accept', category: 'newsletter', timestamp: 1528114618, valid_until: 'unlimited' };

describe('eventEvidence', () => {
  it('keeps the seed attributes as sent, our imported_timestamp, customer_ids and custom attributes apart', () => {
    const r = eventEvidence(
      { ...base, email: 'Ann@Example.com', identification: 'dab8a3d0d868126', identification_type: 'cookie', message: 'Do you agree to...?', source: 'page', campaign: 'spring', form: { id: 7, fields: ['email'] } },
      { source: 'private_api', now, customerIds: { registered: 'u1', email: 'Ann@Example.com' } },
    );
    expect(r.problems).toEqual([]);
    expect(r.attributes).toEqual({
      ...base,
      email: 'Ann@Example.com',
      identification: 'dab8a3d0d868126',
      identification_type: 'cookie',
      message: 'Do you agree to...?',
      source: 'page',
      imported_timestamp: 1_700_000_000,
      customer_ids: { registered: 'u1', email: 'Ann@Example.com' },
      custom: { campaign: 'spring', form: { id: 7, fields: ['email'] } },
    });
  });

  it("imported_timestamp is ours: a sender's value is kept beside it, not in its place", () => {
    const r = eventEvidence({ ...base, imported_timestamp: 1522071973 }, { source: 'import', now });
    expect(r.attributes).toMatchObject({ imported_timestamp: 1_700_000_000, imported_timestamp_sent: 1522071973, source: 'import' });
    expect(r.attributes).not.toHaveProperty('custom');
  });

  it.each([
    ['65 custom attributes', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`a${i}`, i])), 'at most 64 custom attributes'],
    ['a key of 129 characters', { ['k'.repeat(129)]: 1 }, 'keys of 1-128 characters'],
    ['a string of 2049 characters', { note: 'x'.repeat(2049) }, 'properties.note: a string of at most 2048 characters'],
    ['nesting 5 deep', { deep: { a: { b: { c: { d: { e: 1 } } } } } }, 'nested at most 4 levels deep'],
    ['an array of 65 items', { list: Array.from({ length: 65 }, () => 0) }, 'properties.list: at most 64 items'],
    ['a __proto__ key', JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>, 'the key __proto__ cannot be kept'],
  ])('%s is a problem, and no custom attribute is kept half', (_name, extra, problem) => {
    const r = eventEvidence({ ...base, ...extra }, { source: 'private_api', now });
    expect(r.problems.join('; ')).toContain(problem);
    expect(r.attributes).not.toHaveProperty('custom');
    expect(r.attributes).toMatchObject(base);
  });

  it('nesting 4 deep is kept', () => {
    expect(eventEvidence({ ...base, deep: { a: { b: { c: [1] } } } }, { source: 'private_api', now }).problems).toEqual([]);
  });

  it('more than 16 KiB of evidence in all is a problem; the seed attributes stay', () => {
    const custom = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`note${i}`, 'x'.repeat(2000)]));
    const r = eventEvidence({ ...base, message: 'Do you agree?', ...custom }, { source: 'private_api', now });
    expect(r.problems).toEqual([expect.stringContaining('16384 bytes of evidence')]);
    expect(r.attributes).toMatchObject({ ...base, message: 'Do you agree?', imported_timestamp: 1_700_000_000 });
    expect(r.attributes).not.toHaveProperty('custom');
  });

  it('bounds customer_ids like custom attributes', () => {
    const r = eventEvidence(base, { source: 'private_api', now, customerIds: { registered: 'u1', other: 'y'.repeat(3000) } });
    expect(r.problems).toEqual(['customer_ids.other: a string of at most 2048 characters']);
    expect(r.attributes).not.toHaveProperty('customer_ids');
  });

  it('stops at the depth limit without walking a hostile nesting', () => {
    let v: unknown = 1;
    for (let i = 0; i < 100_000; i++) v = { v };
    expect(attributeProblems(v, 'x')).toEqual([`x.v.v.v.v: nested at most ${EVENT_ATTRIBUTE_LIMITS.maxDepth} levels deep`]);
  });
});

describe('consentEventInput keeps the evidence', () => {
  it('a valid event carries its attributes to the store', () => {
    const r = consentEventInput({ ...base, message: 'Do you agree?', email: 'ann@example.com', campaign: 'spring' }, { ...ctx, customerIds: { registered: 'u1' } });
    expect(r.problems).toEqual([]);
    expect(r.input).toMatchObject({ valid: true, action: 'accept', source: 'private_api', attributes: { email: 'ann@example.com', message: 'Do you agree?', custom: { campaign: 'spring' }, customer_ids: { registered: 'u1' }, source: 'private_api' } });
  });

  it.each(['crm', 'import', 'list_unsubscribe', 'page', 'public_api', 'private_api', 'scenario'])('source %s is a seed value', (source) => {
    expect(consentEventInput({ ...base, source }, ctx).input).toMatchObject({ valid: true, source });
  });

  it('another source is an invalid event that revokes; the value stays in the attributes only', () => {
    const r = consentEventInput({ ...base, source: 'website' }, ctx);
    expect(r.problems).toEqual([expect.stringContaining('source: one of crm, import')]);
    expect(r.input).toMatchObject({ valid: false, action: 'reject', validUntil: null, source: 'private_api', attributes: { source: 'website' } });
  });

  it('evidence beyond the bounds makes the event invalid (it revokes), never silently cut', () => {
    const r = consentEventInput({ ...base, note: 'x'.repeat(2049) }, ctx);
    expect(r.input).toMatchObject({ valid: false, action: 'reject', invalidReason: expect.stringContaining('properties.note') });
  });

  it('an email that is not a string of at most 320 characters is invalid', () => {
    expect(consentEventInput({ ...base, email: 42 }, ctx).input).toMatchObject({ valid: false });
    expect(consentEventInput({ ...base, email: 'e'.repeat(321) }, ctx).input).toMatchObject({ valid: false });
  });
});
