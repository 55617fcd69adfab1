import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeWithLibrary } from '../../../test/fixtures/tcf/build.ts';
import { consentEventInput, consentTime, csvHeader, MAX_TIME, parseTime, pushInputs, pushSchema, tcfProblem } from './inputs.ts';

const ctx = { siteId: 's', subject: { type: 'user' as const, id: 'u1' }, source: 'private_api', now: 1_700_000_000_000, skewMs: 300_000 };

describe('parseTime', () => {
  it.each([
    [1528114618, 1528114618000],
    ['1528114618', 1528114618000],
    [1528114618123, 1528114618123],
    ['2026-03-01T10:00:00Z', Date.UTC(2026, 2, 1, 10)],
    ['2026-03-01T10:00:00.5+02:00', Date.UTC(2026, 2, 1, 8, 0, 0, 500)],
    ['2026-03-01 10:00-0130', Date.UTC(2026, 2, 1, 11, 30)],
    ['2026-03-01T10:00:00.123456789z', Date.UTC(2026, 2, 1, 10, 0, 0, 123)],
    // A date alone is midnight UTC (as ECMAScript reads it), the same on every server.
    ['2026-03-01', Date.UTC(2026, 2, 1)],
    // Without a zone the instant depends on the server's time zone: refused.
    ['2026-03-01T10:00:00', undefined],
    ['2026-03-01T10:00', undefined],
    ['2026-02-30T10:00:00Z', undefined],
    ['2026-03-01T24:00:00Z', undefined],
    ['2026-03-01T10:00:00+24:00', undefined],
    ['1969-12-31T23:59:59Z', undefined],
    ['Sun, 01 Mar 2026 10:00:00 GMT', undefined],
    ['9999-12-31T23:59:59.999Z', MAX_TIME],
    // Seconds beyond year 9999 and microseconds (read as milliseconds) are no dates.
    [99999999999, 99999999999000],
    [1_700_000_000_000_000, undefined],
    ['1700000000000000', undefined],
    ['yesterday', undefined],
    [-5, undefined],
    [Number.NaN, undefined],
    [null, undefined],
  ])('%j → %j', (v, ms) => {
    expect(parseTime(v)).toBe(ms);
  });
});

describe('consentTime: the one check of a consent time', () => {
  const now = Date.UTC(2026, 11, 2, 12);
  it('refuses a time beyond now + skew, accepts up to it', () => {
    expect(consentTime(now / 1000 + 300, now, 300_000)).toEqual({ ok: true, ms: now + 300_000 });
    expect(consentTime(now + 300_001, now, 300_000)).toMatchObject({ ok: false, error: expect.stringMatching(/^in the future/) });
    expect(consentTime('2099-01-01T00:00:00Z', now, 300_000)).toMatchObject({ ok: false });
    expect(consentTime(99999999999, now, 300_000)).toMatchObject({ ok: false, error: expect.stringMatching(/^in the future/) });
    // Microseconds: beyond the year 9999 when read as milliseconds.
    expect(consentTime(now * 1000, now, 300_000)).toMatchObject({ ok: false, error: expect.stringContaining('ISO 8601') });
    expect(consentTime('2026-01-01T00:00:00', now, 300_000)).toMatchObject({ ok: false, error: expect.stringContaining('with a zone') });
    for (const blank of [undefined, null, '']) expect(consentTime(blank, now, 300_000)).toEqual({ ok: false, error: 'required' });
  });

  it('any input: refused, or a time in (0, now + skew] equal to what parseTime reads', () => {
    const input = fc.oneof(
      fc.double({ noNaN: false }),
      fc.integer({ min: -1e3, max: Number.MAX_SAFE_INTEGER }),
      fc.date({ min: new Date(-1e12), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.date({ min: new Date(0), max: new Date(MAX_TIME), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 19)),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(input, fc.integer({ min: 0, max: 3_600_000 }), (v, skew) => {
        const r = consentTime(v, now, skew);
        if (r.ok) {
          expect(r.ms).toBeGreaterThan(0);
          expect(r.ms).toBeLessThanOrEqual(now + skew);
          expect(parseTime(v)).toBe(r.ms);
        }
        if (typeof v === 'string' && /T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(v)) expect(r.ok).toBe(false);
      }),
      { seed: 20261202, numRuns: 2000 },
    );
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
  ])('%s is stored invalid and revokes its category', (_name, raw, problem) => {
    const r = consentEventInput(raw, ctx);
    expect(r.problems).toContain(problem);
    expect(r.input).toMatchObject({ action: 'reject', item: 'c', valid: false, invalidReason: expect.stringContaining(problem) });
  });

  it.each([
    ['no timestamp', { action: 'accept', category: 'c', valid_until: 'unlimited' }, 'timestamp: required'],
    ['a blank timestamp', { action: 'reject', category: 'c', timestamp: '' }, 'timestamp: required'],
    ['a zone-less timestamp', { action: 'reject', category: 'c', timestamp: '2023-11-14T00:00:00' }, 'timestamp: unix seconds, milliseconds or ISO 8601 with a zone'],
    ['a future timestamp', { action: 'accept', category: 'c', timestamp: '2099-01-01T00:00:00Z', valid_until: 'unlimited' }, 'timestamp: in the future'],
    ['microseconds', { action: 'accept', category: 'c', timestamp: 1_528_114_618_000_000, valid_until: 'unlimited' }, 'timestamp: unix seconds'],
  ])('%s: the event cannot be placed in time, so it is reported and NOT stored (never dated now)', (_name, raw, problem) => {
    const r = consentEventInput(raw, ctx);
    expect(r.input).toBeUndefined();
    expect(r.problems[0]).toContain(problem);
  });

  it('valid_until is bounded (year 9999) but may precede the timestamp, as in the seed\'s own CSV example', () => {
    expect(consentEventInput({ action: 'accept', category: 'c', timestamp: 1522152855, valid_until: 1522112345 }, ctx).input).toMatchObject({ valid: true, validUntil: 1522112345000 });
    expect(consentEventInput({ action: 'accept', category: 'c', timestamp: 1522152855, valid_until: 1_522_112_345_000_000 }, ctx).input).toMatchObject({ valid: false });
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
  const pctx = { siteId: 's', subject: { type: 'visitor' as const, id: 'v1' }, links: [{ type: 'user' as const, id: 'u1' }], source: 'push', now: 1_700_000_000_000, skewMs: 300_000 };

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

  const TC = encodeWithLibrary({ lastUpdated: new Date(Date.UTC(2023, 10, 1)), purposeConsents: [1] });

  it("Seeka's identity payload with consent.privacy.tcfConsentString is taken as is", () => {
    const raw = { userId: 'u1', firstName: 'ignored', consent: { privacy: { tcfConsentString: TC } } };
    const r = pushInputs(pushSchema.parse(raw), raw, pctx);
    expect(r.patch).toMatchObject({ tcfString: TC });
    expect(r.problems).toEqual([]);
  });

  it('a TC string that does not decode (through the bounded guard) is refused, naming the field', () => {
    expect(tcfProblem(TC)).toBeUndefined();
    for (const garbage of ['CQabc', 'not a tc string', 'CPgarbage-not-a-tc-string', `${TC}.${TC}`]) expect(tcfProblem(garbage), garbage).toMatch(/^not a TCF v2 TC string/);
    expect(pushSchema.safeParse({ userId: 'u1', tcfString: 'garbage' }).error?.issues[0]?.path).toEqual(['tcfString']);
    expect(pushSchema.safeParse({ userId: 'u1', consent: { privacy: { tcfConsentString: 'garbage' } } }).error?.issues[0]?.path).toEqual(['consent', 'privacy', 'tcfConsentString']);
  });

  it('a future or zone-less timestamp is a problem naming timestamp; none at all is the arrival', () => {
    const at = (timestamp: unknown) => pushInputs(pushSchema.parse({ visitorId: 'v1', categories: { analytics: true }, timestamp }), {}, pctx);
    expect(at('2099-01-01T00:00:00Z').problems).toEqual([{ path: 'timestamp', message: expect.stringMatching(/^in the future/) }]);
    expect(at('2023-11-14T00:00:00').problems).toEqual([{ path: 'timestamp', message: expect.stringContaining('with a zone') }]);
    expect(at(99999999999).problems[0]?.path).toBe('timestamp');
    expect(at(undefined).inputs[0]?.consentAt).toBe(pctx.now);
  });

  it('ids and references follow the one id rule', () => {
    for (const [field, value] of [['visitorId', 'a\u0000b'], ['userId', 'x\u0085'], ['customUserId', 'a\ud800'], ['visitorId', 'x'.repeat(257)], ['reference', 'r\u0000']] as const) {
      const r = pushSchema.safeParse({ [field]: value, categories: { analytics: true } });
      expect(r.error?.issues[0]?.path, `${field}=${JSON.stringify(value)}`).toEqual([field]);
    }
    expect(pushSchema.safeParse({ visitorId: 'Zoë 😀 [email protected]', categories: { analytics: true } }).success).toBe(true);
  });

  it('an empty push is refused', () => {
    expect(pushInputs(pushSchema.parse({ visitorId: 'v1' }), {}, pctx).problems[0]?.message).toMatch(/nothing to record/);
  });
});
