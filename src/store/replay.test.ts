import { describe, expect, it } from 'vitest';
import { replayAudit, type ImpliedItem, type ImpliedRecord, type ReplayRow } from './replay.ts';

let nextSeq = 0;
function row(over: Partial<ReplayRow>): ReplayRow {
  nextSeq++;
  return { seq: nextSeq, site_id: 's', subject_key: 'visitor:v', action: 'accept', item: 'ads', consent_at: 1000, valid_until: null, message: null, source: 'push', valid: 1, ...over };
}
const accept = (at: number, over: Partial<ReplayRow> = {}): ReplayRow => row({ action: 'accept', consent_at: at, ...over });
const reject = (at: number, over: Partial<ReplayRow> = {}): ReplayRow => row({ action: 'reject', consent_at: at, ...over });
const invalid = (at: number, over: Partial<ReplayRow> = {}): ReplayRow => row({ action: 'accept', consent_at: at, valid: 0, ...over });
const record = (at: number, fields: Record<string, unknown>, over: Partial<ReplayRow> = {}): ReplayRow => row({ action: 'record', item: null, consent_at: at, message: JSON.stringify(fields), ...over });
const link = (a: string, b: string): ReplayRow => row({ action: 'link', item: null, consent_at: null, subject_key: a, message: b, source: 'link' });
const expire = (target: ReplayRow, over: Partial<ReplayRow> = {}): ReplayRow => row({ action: 'expire', subject_key: target.subject_key, item: target.item, consent_at: null, message: String(target.seq), ...over });

describe('replayAudit: items (the precedence of Writer.input)', () => {
  const cases: { name: string; rows: () => ReplayRow[]; want: (rows: ReplayRow[]) => Omit<ImpliedItem, never> | undefined }[] = [
    { name: 'one grant', rows: () => [accept(1000, { valid_until: 5000 })], want: (r) => ({ status: 'granted', consentAt: 1000, validUntil: 5000, source: 'push', auditSeq: r[0]!.seq }) },
    { name: 'a newer denial wins', rows: () => [accept(1000), reject(2000)], want: (r) => ({ status: 'denied', consentAt: 2000, validUntil: null, source: 'push', auditSeq: r[1]!.seq }) },
    { name: 'an older input arriving later changes nothing', rows: () => [reject(2000), accept(1000)], want: (r) => ({ status: 'denied', consentAt: 2000, validUntil: null, source: 'push', auditSeq: r[0]!.seq }) },
    { name: 'equal times: the denial wins whatever the order', rows: () => [reject(1000), accept(1000)], want: (r) => ({ status: 'denied', consentAt: 1000, validUntil: null, source: 'push', auditSeq: r[0]!.seq }) },
    { name: 'equal times: the grant expiring first wins', rows: () => [accept(1000, { valid_until: 9000 }), accept(1000, { valid_until: 3000 })], want: (r) => ({ status: 'granted', consentAt: 1000, validUntil: 3000, source: 'push', auditSeq: r[1]!.seq }) },
    { name: 'equal claims: the first stays (its seq)', rows: () => [accept(1000), accept(1000)], want: (r) => ({ status: 'granted', consentAt: 1000, validUntil: null, source: 'push', auditSeq: r[0]!.seq }) },
    { name: 'a denial keeps no validUntil', rows: () => [reject(1000, { valid_until: 5000 })], want: (r) => ({ status: 'denied', consentAt: 1000, validUntil: null, source: 'push', auditSeq: r[0]!.seq }) },
    { name: 'an invalid accept is a reject', rows: () => [accept(1000), invalid(2000, { valid_until: 7000 })], want: (r) => ({ status: 'denied', consentAt: 2000, validUntil: null, source: 'push', auditSeq: r[1]!.seq }) },
    {
      name: 'expiring the invalid event restores the grant before it',
      rows: () => {
        const bad = invalid(2000);
        return [accept(1000), bad, expire(bad)];
      },
      want: (r) => ({ status: 'granted', consentAt: 1000, validUntil: null, source: 'push', auditSeq: r[0]!.seq }),
    },
    {
      name: 'expiring the only event leaves no item',
      rows: () => {
        const bad = invalid(2000);
        return [bad, expire(bad)];
      },
      want: () => undefined,
    },
    {
      name: 'after an expiry, the next best invalid event still revokes',
      rows: () => {
        const a = invalid(3000);
        const b = invalid(2000);
        return [accept(1000), a, b, expire(a)];
      },
      want: (r) => ({ status: 'denied', consentAt: 2000, validUntil: null, source: 'push', auditSeq: r[2]!.seq }),
    },
    { name: 'an `expired` mark changes nothing', rows: () => [accept(1000), row({ action: 'expired', consent_at: null })], want: (r) => ({ status: 'granted', consentAt: 1000, validUntil: null, source: 'push', auditSeq: r[0]!.seq }) },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const rows = c.rows();
      const { state, problems } = replayAudit(rows);
      expect(problems).toEqual([]);
      expect(state.item('s', 'visitor:v', 'ads')).toEqual(c.want(rows));
    });
  }
});

describe('replayAudit: the record part (Writer.patch)', () => {
  const cases: { name: string; rows: () => ReplayRow[]; want: ImpliedRecord | undefined }[] = [
    { name: 'no record row', rows: () => [accept(1000)], want: undefined },
    { name: 'one patch', rows: () => [record(1000, { tcfString: 'CP', gcm: { b: 'denied', a: 'granted' } })], want: { tcfString: 'CP', gcm: '{"a":"granted","b":"denied"}', consentType: null, geoCountry: null, consentAt: 1000, source: 'push' } },
    { name: 'absent fields are kept, null clears', rows: () => [record(1000, { tcfString: 'CP', consentType: 'x' }), record(2000, { consentType: null, geoCountry: 'DE' })], want: { tcfString: 'CP', gcm: null, consentType: null, geoCountry: 'DE', consentAt: 2000, source: 'push' } },
    { name: 'an older patch changes nothing', rows: () => [record(2000, { tcfString: 'new' }), record(1000, { tcfString: 'old' })], want: { tcfString: 'new', gcm: null, consentType: null, geoCountry: null, consentAt: 2000, source: 'push' } },
    { name: 'equal times: the later patch wins', rows: () => [record(1000, { tcfString: 'a' }), record(1000, { tcfString: 'b' }, { source: 'crm' })], want: { tcfString: 'b', gcm: null, consentType: null, geoCountry: null, consentAt: 1000, source: 'crm' } },
    { name: 'text as stored (NUL replaced)', rows: () => [record(1000, { tcfString: 'a\u0000b' })], want: { tcfString: 'a\uFFFDb', gcm: null, consentType: null, geoCountry: null, consentAt: 1000, source: 'push' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { state, problems } = replayAudit(c.rows());
      expect(problems).toEqual([]);
      expect(state.record('s', 'visitor:v')).toEqual(c.want);
    });
  }
});

describe('replayAudit: profiles (Writer.link)', () => {
  const partition = (rows: ReplayRow[], keys: string[]): number[] => {
    const { state } = replayAudit(rows);
    const ids = keys.map((k) => state.profileOf('s', k));
    return ids.map((id) => (id === undefined ? -1 : ids.indexOf(id)));
  };
  it('links join profiles, transitively; inputs and records name subjects', () => {
    const rows = [accept(1, { subject_key: 'visitor:a' }), record(1, {}, { subject_key: 'visitor:b' }), link('user:u', 'visitor:a'), link('user:u', 'visitor:c')];
    expect(partition(rows, ['user:u', 'visitor:a', 'visitor:b', 'visitor:c', 'visitor:x'])).toEqual([0, 0, 2, 0, -1]);
  });
  it('a self link records a lone subject', () => {
    expect(partition([link('user:u', 'user:u')], ['user:u'])).toEqual([0]);
  });
  it('two user ids merge; a visitor between two users is a link the store refuses: a malformed row', () => {
    const merged = [link('user:a', 'visitor:v'), link('user:b', 'user:a')];
    expect(partition(merged, ['user:a', 'user:b', 'visitor:v'])).toEqual([0, 0, 0]);
    const { problems } = replayAudit([link('user:a', 'visitor:v'), link('user:b', 'user:b'), link('user:b', 'visitor:v')]);
    expect(problems).toMatchObject([{ reason: 'malformed_row' }]);
  });
  it('profiles are per site', () => {
    const { state } = replayAudit([link('user:a', 'visitor:v'), { ...link('user:a', 'user:a'), site_id: 't' }]);
    expect(state.profileOf('s', 'user:a')).toBe(state.profileOf('s', 'visitor:v'));
    expect(state.profileOf('t', 'visitor:v')).toBeUndefined();
  });
});

describe('replayAudit: rows it cannot apply', () => {
  const cases: { name: string; rows: () => ReplayRow[]; reason: string }[] = [
    { name: 'an unknown action', rows: () => [row({ action: 'grant' })], reason: 'unknown_action' },
    { name: 'an expiry of a valid event', rows: () => [accept(1), row({ action: 'expire', message: String(nextSeq) })], reason: 'malformed_row' },
    { name: 'an expiry of another item', rows: () => {
      const bad = invalid(2);
      return [bad, expire(bad, { item: 'other' })];
    }, reason: 'malformed_row' },
    { name: 'an expiry of a later seq', rows: () => [row({ action: 'expire', message: String(nextSeq + 5) })], reason: 'malformed_row' },
    { name: 'record fields that are not JSON', rows: () => [row({ action: 'record', item: null, message: '{' })], reason: 'malformed_row' },
    { name: 'a link without the other side', rows: () => [row({ action: 'link', item: null, message: null })], reason: 'malformed_row' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(replayAudit(c.rows()).problems).toMatchObject([{ reason: c.reason }]);
    });
  }
});
