import { describe, expect, it } from 'vitest';
import { consentEventInput, csvHeader, parseTime, pushInputs, pushSchema } from './inputs.ts';

const ctx = { siteId: 's', subject: { type: 'user' as const, id: 'u1' }, source: 'private_api', now: 1_700_000_000_000 };

describe('parseTime', () => {
  it.each([
    [1528114618, 1528114618000],
    ['1528114618', 1528114618000],
    [1528114618123, 1528114618123],
    ['2026-03-01T10:00:00Z', Date.UTC(2026, 2, 1, 10)],
    ['yesterday', undefined],
    [-5, undefined],
    [Number.NaN, undefined],
    [null, undefined],
  ])('%j → %j', (v, ms) => {
    expect(parseTime(v)).toBe(ms);
  });
});

describe('Bloomreach consent events', () => {
  it('a valid accept and a valid reject', () => {
    expect(consentEventInput({ action: 'accept', category: 'newsletter', timestamp: 1528114618, valid_until: 'unlimited', message: 'Do you agree?' }, ctx)).toEqual({
      problems: [],
      input: expect.objectContaining({ action: 'accept', item: 'newsletter', consentAt: 1528114618000, validUntil: null, valid: true, message: 'Do you agree?', source: 'private_api' }),
    });
    const r = consentEventInput({ action: 'reject', category: 'newsletter', timestamp: 1528114618, source: 'crm' }, ctx);
    expect(r.input).toMatchObject({ action: 'reject', valid: true, source: 'crm', validUntil: null });
  });

  it.each([
    ['an unknown action', { action: 'maybe', category: 'c', timestamp: 1, valid_until: 'unlimited' }, 'action: must be accept or reject'],
    ['an accept without valid_until', { action: 'accept', category: 'c', timestamp: 1528114618 }, 'valid_until: required when action is accept (unlimited or a timestamp)'],
    ['a bad valid_until', { action: 'accept', category: 'c', timestamp: 1528114618, valid_until: 'soon' }, 'valid_until: unlimited or a timestamp'],
    ['no timestamp', { action: 'accept', category: 'c', valid_until: 'unlimited' }, 'timestamp: required'],
  ])('%s is stored invalid and revokes its category', (_name, raw, problem) => {
    const r = consentEventInput(raw, ctx);
    expect(r.problems).toContain(problem);
    expect(r.input).toMatchObject({ action: 'reject', item: 'c', valid: false, invalidReason: expect.stringContaining(problem) });
  });

  it('an event without a category cannot revoke a category: reported, no input', () => {
    expect(consentEventInput({ action: 'accept', timestamp: 1, valid_until: 'unlimited' }, ctx)).toEqual({ problems: ['category: required'] });
  });
});

describe('CSV header', () => {
  it('finds the columns in any order and refuses missing or repeated ones', () => {
    expect(csvHeader(['customer_id', 'Action', 'category', 'timestamp', 'valid_until'])).toEqual({ customer_id: 0, action: 1, category: 2, timestamp: 3, valid_until: 4 });
    expect(csvHeader(['action', 'category'])).toMatch(/missing column valid_until/);
    expect(csvHeader(['action', 'action', 'category', 'valid_until', 'timestamp', 'customer_id'])).toBe('column action appears twice');
  });
});

describe('pushes', () => {
  const pctx = { siteId: 's', subject: { type: 'visitor' as const, id: 'v1' }, links: [{ type: 'user' as const, id: 'u1' }], source: 'push', now: 1_700_000_000_000 };

  it('categories become inputs; validUntil applies to grants', () => {
    const body = pushSchema.parse({ visitorId: 'v1', userId: 'u1', categories: { analytics: true, advertising: 'denied' }, validUntil: '2027-01-01T00:00:00Z' });
    const r = pushInputs(body, body, pctx);
    expect(r.problems).toEqual([]);
    expect(r.inputs).toEqual([
      expect.objectContaining({ item: 'analytics', action: 'accept', validUntil: Date.UTC(2027, 0, 1), links: [{ type: 'user', id: 'u1' }] }),
      expect.objectContaining({ item: 'advertising', action: 'reject', validUntil: null }),
    ]);
  });

  it("SecurePrivacy's object consent: All grants the reference, None denies it", () => {
    const all = pushInputs(pushSchema.parse({ reference: 'chatbot-7', consentGiven: 'All', consentType: 'Chatbot' }), {}, pctx);
    expect(all.inputs).toEqual([expect.objectContaining({ item: 'ref:chatbot-7', action: 'accept' })]);
    expect(all.patch).toMatchObject({ consentType: 'Chatbot' });
    expect(pushInputs(pushSchema.parse({ reference: 'chatbot-7', consentGiven: 'None' }), {}, pctx).inputs).toEqual([expect.objectContaining({ action: 'reject' })]);
  });

  it("Seeka's identity payload with consent.privacy.tcfConsentString is taken as is", () => {
    const raw = { userId: 'u1', firstName: 'ignored', consent: { privacy: { tcfConsentString: 'CQabc' } } };
    const r = pushInputs(pushSchema.parse(raw), raw, pctx);
    expect(r.patch).toMatchObject({ tcfString: 'CQabc' });
    expect(r.problems).toEqual([]);
  });

  it('an empty push is refused', () => {
    expect(pushInputs(pushSchema.parse({ visitorId: 'v1' }), {}, pctx).problems[0]).toMatch(/nothing to record/);
  });
});
