import { describe, expect, it } from 'vitest';
import type { RefRecord } from '../../store/universal-consent.ts';
import { clientIdFor, type ClientIdKey } from '../../store/client-id.ts';

const KEY: ClientIdKey = { secret: Buffer.alloc(32, 7) };
import { consentGivenOf, queryAnswer, recordAnswer, resolveGrants } from './records.ts';

const rec = (over: Partial<RefRecord> = {}): RefRecord => ({
  subjectKey: 'user:anna',
  item: 'ref:Dealership',
  status: 'granted',
  consentAt: Date.UTC(2026, 0, 2),
  validUntil: null,
  auditSeq: 7,
  source: 'secureprivacy',
  attributes: { ConsentGiven: 'Partial', ConsentType: 'Dealership', Metadata: '{}', URI: 'https://x.example', CustomUserId: 'anna', ClientId: clientIdFor(KEY, 'shop', 'anna'), IP: '203.0.113.5' },
  created: Date.UTC(2026, 0, 1),
  ...over,
});

describe('SecurePrivacy records', () => {
  it('maps ConsentGiven onto the site categories; a name the site lacks is a config error', () => {
    expect(resolveGrants(['necessary', 'analytics'], { None: [] })).toEqual({ All: ['necessary', 'analytics'], Partial: ['necessary'], None: [] });
    expect(resolveGrants(['analytics'], { All: ['analytics'], Partial: ['analytics'], None: [] }).Partial).toEqual(['analytics']);
    expect(() => resolveGrants(['analytics'], { Partial: ['functionl'], None: [] })).toThrow(/functionl is not a site category/);
  });

  it('ConsentGiven reads as given; denied or expired is None; another input\'s grant is All', () => {
    expect(consentGivenOf(rec(), 0)).toBe('Partial');
    expect(consentGivenOf(rec({ status: 'denied' }), 0)).toBe('None');
    expect(consentGivenOf(rec({ validUntil: 10 }), 11)).toBe('None');
    expect(consentGivenOf(rec({ attributes: null }), 0)).toBe('All');
  });

  it("answers with exactly the seed's fields", () => {
    const a = recordAnswer(KEY, 'shop', rec(), 0);
    expect(Object.keys(a).sort()).toEqual(['ClientId', 'ConsentGiven', 'ConsentType', 'Created', 'CustomUserId', 'Id', 'LastUpdated', 'Metadata', 'Reference', 'URI']);
    expect(a).toMatchObject({ Created: '2026-01-01T00:00:00.000Z', LastUpdated: '2026-01-02T00:00:00.000Z', Reference: 'Dealership', ClientId: clientIdFor(KEY, 'shop', 'anna') });
    // A visitor's record (no CustomUserId) has no CustomUserId field; its ClientId is the visitor id.
    const v = recordAnswer(KEY, 'shop', rec({ subjectKey: 'visitor:c-1', attributes: null }), 0);
    expect(v).not.toHaveProperty('CustomUserId');
    expect(v.ClientId).toBe('c-1');
    const q = queryAnswer(KEY, 'shop', rec(), 0);
    expect(q).toMatchObject({ ConsentGiven: true, Fingerprint: { CustomUserId: 'anna', IP: '203.0.113.5', City: null } });
  });
});
