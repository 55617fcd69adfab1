import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { encodeWithLibrary } from '../../test/fixtures/tcf/build.ts';
import { createConsentResolver } from '../consent/resolve.ts';
import type { RequestSignals } from '../consent/signals.ts';
import type { Event } from '../ingest/event.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { ValidationError } from '../errors.ts';
import type { ConsentInput, RecordPatch, SubjectConsent } from '../store/types.ts';
import { createHitConsentRecorder } from './record-hit-consent.ts';

const NOW = Date.UTC(2026, 5, 1, 12);
const categories = { advertising: { saleOrShare: true, tcf: { purposes: [1, 3, 4] }, gcm: ['ad_storage' as const] }, analytics: { gcm: ['analytics_storage' as const] } };

function event(messageId: string, prefs?: Record<string, boolean>, timestamp = new Date(NOW - 1000).toISOString()): Event {
  return {
    messageId,
    type: 'track',
    event: 'x',
    timestamp,
    receivedAt: new Date(NOW).toISOString(),
    context: prefs === undefined ? {} : { consent: { categoryPreferences: prefs } },
    properties: {},
    traits: {},
    integrations: {},
  };
}

function setup(profile: () => SubjectConsent | undefined = () => undefined, fail?: Error) {
  const writes: { inputs: readonly ConsentInput[]; patches: readonly RecordPatch[] }[] = [];
  const counts: string[] = [];
  const logged: unknown[] = [];
  let reads = 0;
  const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const recorder = createHitConsentRecorder({
    siteId: 'shop',
    resolver: createConsentResolver({ categories, tcf: { maxLength: 2048, maxAgeDays: 390, cacheEntries: 10 } }),
    apply: (inputs, patches) => {
      writes.push({ inputs, patches });
      return fail === undefined ? Promise.resolve([]) : Promise.reject(fail);
    },
    readVisitor: () => {
      reads++;
      return Promise.resolve(profile());
    },
    log,
    count: (r) => counts.push(r),
    clock: new FakeClock(NOW),
  });
  return { recorder, writes, counts, logged, reads: () => reads };
}

const visitor = (id: string, extra: Partial<RequestSignals> = {}): RequestSignals => ({ gpc: false, visitor: { id, source: 'body:anonymousId' }, ...extra });

describe('recording the consent a hit carries (store.recordHitConsent)', () => {
  it('writes the Segment consent object as items, source hit, at the signal time bounded by receivedAt', async () => {
    const s = setup();
    s.recorder.record(event('m1', { advertising: true }, '2099-01-01T00:00:00Z'), visitor('v1'));
    await s.recorder.settled();
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.inputs).toEqual([
      expect.objectContaining({ siteId: 'shop', subject: { type: 'visitor', id: 'v1' }, action: 'accept', item: 'advertising', source: 'hit', valid: true, consentAt: NOW, validUntil: null, attributes: { messageId: 'm1', signal: 'segment' } }),
    ]);
    expect(s.counts).toEqual(['written']);
  });

  it('skips hits without signals, without a visitor, or with Sec-GPC only', async () => {
    const s = setup();
    s.recorder.record(event('m1'), visitor('v1'));
    s.recorder.record(event('m2', { advertising: true }), { gpc: false });
    s.recorder.record(event('m3'), visitor('v1', { gpc: true }));
    await s.recorder.settled();
    expect(s.writes).toEqual([]);
    expect(s.counts).toEqual([]);
    expect(s.reads()).toBe(0);
  });

  it('the same state again is not written; after a change elsewhere the profile is read and compared', async () => {
    const granted: SubjectConsent = {
      siteId: 'shop',
      subject: { type: 'visitor', id: 'v1' },
      linked: [],
      version: 1,
      items: { advertising: { item: 'advertising', status: 'granted', consentAt: NOW - 5000, validUntil: null, source: 'hit', expired: false } },
      tcfString: null,
      gcm: null,
      consentType: null,
      geoCountry: null,
      consentAt: NOW - 5000,
      updatedAt: NOW,
    };
    const s = setup(() => granted);
    // The profile already says so: nothing written.
    s.recorder.record(event('m1', { advertising: true }), visitor('v1'));
    await s.recorder.settled();
    s.recorder.record(event('m2', { advertising: true }), visitor('v1'));
    await s.recorder.settled();
    expect(s.writes).toEqual([]);
    expect(s.reads()).toBe(1);
    // A change: asked again, and a different state is written.
    s.recorder.forget('v1');
    s.recorder.record(event('m3', { advertising: false }), visitor('v1'));
    await s.recorder.settled();
    expect(s.writes.map((w) => w.inputs.map((i) => [i.item, i.action]))).toEqual([[['advertising', 'reject']]]);
    expect(s.counts).toEqual(['unchanged', 'unchanged', 'written']);
  });

  it('Consent Mode categories become items', async () => {
    const s = setup();
    s.recorder.record(event('m1'), visitor('v1', { gcs: 'G101' }));
    await s.recorder.settled();
    expect(s.writes[0]!.inputs.map((i) => [i.item, i.action, i.attributes?.signal, i.consentAt])).toEqual([
      ['advertising', 'reject', 'gcm', NOW],
      ['analytics', 'accept', 'gcm', NOW],
    ]);
  });

  it('a TCF string becomes the profile string (the categories it decides are not items)', async () => {
    const tc = encodeWithLibrary({ lastUpdated: new Date(Date.UTC(2026, 5, 1)), purposeConsents: [1, 3, 4], vendorConsents: [7] });
    const s = setup();
    s.recorder.record(event('m1', { analytics: true }), visitor('v1', { tcf: { value: tc, source: 'query:gdpr_consent' }, gdprApplies: true }));
    await s.recorder.settled();
    const w = s.writes[0]!;
    expect(w.inputs.map((i) => [i.item, i.action, i.attributes?.signal])).toEqual([['analytics', 'accept', 'segment']]);
    expect(w.patches).toEqual([expect.objectContaining({ subject: { type: 'visitor', id: 'v1' }, tcfString: tc, consentAt: Date.UTC(2026, 5, 1), source: 'hit' })]);
  });

  it('an invalid TCF string is recorded and its denials stored as invalid inputs (they revoke)', async () => {
    const s = setup();
    s.recorder.record(event('m1'), visitor('v1', { tcf: { value: 'garbage', source: 'query:gdpr_consent' }, gdprApplies: true }));
    await s.recorder.settled();
    expect(s.writes[0]!.inputs).toEqual([expect.objectContaining({ item: 'advertising', action: 'reject', valid: false, consentAt: NOW })]);
    expect(s.writes[0]!.patches).toEqual([expect.objectContaining({ tcfString: 'garbage', consentAt: NOW })]);
  });

  it('a failed write is counted and logged without ids, and never throws', async () => {
    const s = setup(() => undefined, new ValidationError('inputs[0].subject: invalid visitor-secret-id'));
    expect(() => s.recorder.record(event('m1', { advertising: true }), visitor('visitor-secret-id'))).not.toThrow();
    await s.recorder.settled();
    expect(s.counts).toEqual(['error']);
    expect(JSON.stringify(s.logged)).not.toContain('visitor-secret-id');
    expect(s.logged).toEqual([expect.objectContaining({ code: 'TW_ERR_VALIDATION', msg: 'recording consent carried by a hit failed' })]);
    // Not remembered as written: the next hit tries again.
    s.recorder.record(event('m2', { advertising: true }), visitor('visitor-secret-id'));
    await s.recorder.settled();
    expect(s.writes).toHaveLength(2);
  });
});
