import { describe, expect, it } from 'vitest';
import type { SubjectConsent } from '../store/types.ts';
import { chainSources, createStoreSource, storeSignal } from './store-source.ts';
import type { ConsentSource } from './upstream/source.ts';
import { systemClock } from '../lib/clock.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { encodeWithLibrary } from '../../test/fixtures/tcf/build.ts';
import { createStoredTcfReader, withStoredTcf } from './stored-tcf.ts';
import { createConsentResolver } from './resolve.ts';
import { tcfVerdict } from './tcf-verdict.ts';
import type { Event } from '../ingest/event.ts';

const NOW = Date.UTC(2026, 5, 1);

function consent(items: SubjectConsent['items']): SubjectConsent {
  return { siteId: 's', subject: { type: 'visitor', id: 'v' }, linked: [], version: 1, items, tcfString: null, gcm: null, consentType: null, geoCountry: null, consentAt: null, updatedAt: NOW };
}

describe('storeSignal', () => {
  it('keeps site categories only, each with its own time; expired reads denied', () => {
    const s = storeSignal(
      consent({
        analytics: { item: 'analytics', status: 'granted', consentAt: 10, validUntil: null, source: 'push', expired: false },
        advertising: { item: 'advertising', status: 'granted', consentAt: 20, validUntil: NOW - 1, source: 'push', expired: false },
        newsletter: { item: 'newsletter', status: 'granted', consentAt: 30, validUntil: null, source: 'import', expired: false },
      }),
      ['analytics', 'advertising'],
      NOW,
    );
    expect(s).toEqual({ source: 'store', at: 20, atByCategory: { analytics: 10, advertising: 20 }, categories: { analytics: 'granted', advertising: 'denied' }, version: 1 });
    expect(storeSignal(consent({}), ['analytics'], NOW)).toBeUndefined();
    expect(storeSignal(undefined, ['analytics'], NOW)).toBeUndefined();
  });
});

describe('the store as a consent source', () => {
  function setup(answer: SubjectConsent | undefined | Error) {
    let reads = 0;
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const source = createStoreSource({
      siteId: 's',
      categories: ['analytics'],
      clock: new FakeClock(NOW),
      read: async () => {
        reads++;
        await gate;
        if (answer instanceof Error) throw answer;
        return answer;
      },
    });
    return { source, reads: () => reads, release: () => release?.() };
  }
  const granted = consent({ analytics: { item: 'analytics', status: 'granted', consentAt: 10, validUntil: null, source: 'push', expired: false } });

  it('reads once, then answers from its cache until told of a change', async () => {
    const s = setup(granted);
    s.release();
    expect(await s.source.lookup('v')).toMatchObject({ signal: { categories: { analytics: 'granted' } } });
    expect(s.source.cached('v')).toMatchObject({ categories: { analytics: 'granted' } });
    await s.source.lookup('v');
    expect(s.reads()).toBe(1);
    s.source.forget('visitor:v');
    expect(s.source.cached('v')).toBeUndefined();
  });

  it('a cached grant reads denied from the moment it expires, without another read', async () => {
    let reads = 0;
    let clock = NOW;
    const source = createStoreSource({
      siteId: 's',
      categories: ['analytics', 'advertising'],
      clock: { ...systemClock, now: () => clock },
      read: () => {
        reads++;
        return Promise.resolve(
          consent({
            analytics: { item: 'analytics', status: 'granted', consentAt: 10, validUntil: NOW + 1000, source: 'push', expired: false },
            advertising: { item: 'advertising', status: 'granted', consentAt: 10, validUntil: NOW + 5000, source: 'push', expired: false },
          }),
        );
      },
    });
    expect(await source.lookup('v')).toMatchObject({ signal: { categories: { analytics: 'granted', advertising: 'granted' } } });
    clock = NOW + 999;
    expect(source.cached('v')?.categories).toEqual({ analytics: 'granted', advertising: 'granted' });
    clock = NOW + 1000;
    expect(source.cached('v')?.categories).toEqual({ analytics: 'denied', advertising: 'granted' });
    clock = NOW + 5000;
    expect(await source.lookup('v')).toMatchObject({ signal: { categories: { analytics: 'denied', advertising: 'denied' } } });
    expect(reads).toBe(1);
    expect((await source.readVisitor('v'))?.items.analytics?.validUntil).toBe(NOW + 1000);
    expect(reads).toBe(1);
  });

  it('a write during a read keeps the older answer out of the cache', async () => {
    const s = setup(granted);
    const pending = s.source.lookup('v');
    s.source.invalidate('v');
    s.release();
    await pending;
    expect(s.source.cached('v')).toBeUndefined();
  });

  it('a store error is a failure, never consent', async () => {
    const s = setup(new Error('db down'));
    s.release();
    expect(await s.source.lookup('v')).toEqual({ failure: 'store_error' });
  });

  it('the chain asks the upstream only for visitors the store knows nothing about', async () => {
    const asked: string[] = [];
    const upstream: ConsentSource = {
      cached: () => undefined,
      lookup: (v) => {
        asked.push(v);
        return Promise.resolve({ signal: { source: 'upstream', at: 1, categories: { analytics: 'denied' } } });
      },
      invalidate: () => undefined,
      close: () => Promise.resolve(),
    };
    const known = setup(granted);
    known.release();
    expect(await chainSources(known.source, upstream).lookup('v')).toMatchObject({ signal: { source: 'store' } });
    const empty = setup(undefined);
    empty.release();
    const chain = chainSources(empty.source, upstream);
    expect(await chain.lookup('w')).toMatchObject({ signal: { source: 'upstream' } });
    expect(asked).toEqual(['w']);
    // Without an upstream, "nothing stored" is an answer: unknown, not a failure.
    expect(await chainSources(empty.source, undefined).lookup('w')).toMatchObject({ signal: { source: 'store:none', categories: {} } });
    expect(chainSources(empty.source, undefined).cached('w')).toMatchObject({ source: 'store:none' });
  });
});

describe('the stored TCF string (seed seeka-server-side-consent.txt)', () => {
  // TC strings carry the day only: midnight UTC of NOW's day, consenting to purposes 1, 3, 4 and vendor 7.
  const DAY = Date.UTC(2026, 5, 1);
  const tc = encodeWithLibrary({ lastUpdated: new Date(DAY), purposeConsents: [1, 3, 4], vendorConsents: [7] });
  const siteCategories = { advertising: { tcf: { purposes: [1, 3, 4] } }, analytics: { tcf: { purposes: [1, 8] } }, functional: {} };
  const tcfOptions = { maxLength: 2048, maxAgeDays: 390, cacheEntries: 100 };
  const reader = createStoredTcfReader({ tcf: tcfOptions, categories: siteCategories });
  const ids = Object.keys(siteCategories);
  const withString = (tcfString: string, items: SubjectConsent['items'] = {}): SubjectConsent => ({ ...consent(items), tcfString, consentAt: NOW - 5 });

  it('decides the TCF-mapped categories no item states, and carries the decoded string', () => {
    const s = storeSignal(withString(tc), ids, NOW, reader);
    expect(s).toMatchObject({ source: 'store', categories: { advertising: 'granted', analytics: 'denied' }, atByCategory: { advertising: DAY, analytics: DAY } });
    expect(s?.tcf).toMatchObject({ value: tc, at: DAY, result: { ok: true } });
    // An item stated for a category after the string decides it; the string fills in the rest.
    const stated = storeSignal(withString(tc, { advertising: { item: 'advertising', status: 'denied', consentAt: DAY + 10, validUntil: null, source: 'push', expired: false } }), ids, NOW, reader);
    expect(stated?.categories).toEqual({ advertising: 'denied', analytics: 'denied' });
    // An item older than the string is overridden by it: last write wins (seed seeka-server-side-consent.txt).
    const older = storeSignal(withString(tc, { advertising: { item: 'advertising', status: 'denied', consentAt: 10, validUntil: null, source: 'push', expired: false } }), ids, NOW, reader);
    expect(older?.categories).toEqual({ advertising: 'granted', analytics: 'denied' });
    // An invalid string has no time of its own: it never overrides a stated item.
    const invalid = storeSignal(withString('garbage', { advertising: { item: 'advertising', status: 'granted', consentAt: 10, validUntil: null, source: 'push', expired: false } }), ids, NOW, reader);
    expect(invalid?.categories).toEqual({ advertising: 'granted', analytics: 'denied' });
    // Without the reader (or without a string) nothing changes.
    expect(storeSignal(withString(tc), ids, NOW)).toBeUndefined();
  });

  it('an invalid stored string is no valid TCF consent: its categories denied, every TCF requirement failed', () => {
    for (const bad of ['garbage', 'CQtcfstring', encodeWithLibrary({ lastUpdated: new Date(DAY), purposeConsents: [1, 3, 4], isServiceSpecific: false })]) {
      const s = storeSignal(withString(bad), ids, NOW, reader);
      expect(s?.categories).toEqual({ advertising: 'denied', analytics: 'denied' });
      expect(s?.tcf?.result.ok).toBe(false);
      expect(s?.tcf?.at).toBe(NOW - 5);
    }
    // Expired by age: 390 days after its last update.
    expect(storeSignal(withString(tc), ids, DAY + 391 * 86_400_000, reader)?.tcf?.result).toEqual({ ok: false, reason: 'tcf_expired' });
  });

  it('the cached signal stops granting when the stored string expires, without another read', async () => {
    let clock = NOW;
    let reads = 0;
    const source = createStoreSource({
      siteId: 's',
      categories: ids,
      clock: { ...systemClock, now: () => clock },
      tcf: reader,
      read: () => {
        reads++;
        return Promise.resolve(withString(tc));
      },
      ttlMs: 10 * 365 * 86_400_000,
    });
    expect(await source.lookup('v')).toMatchObject({ signal: { categories: { advertising: 'granted' } } });
    clock = DAY + 391 * 86_400_000;
    expect(source.cached('v')?.categories).toEqual({ advertising: 'denied', analytics: 'denied' });
    expect(reads).toBe(1);
  });

  it('a TCF-only record (Seeka push) is an answer of the store, not "nothing stored"', async () => {
    const source = createStoreSource({ siteId: 's', categories: ['functional'], tcf: createStoredTcfReader({ tcf: tcfOptions, categories: { functional: {} } }), clock: new FakeClock(NOW), read: () => Promise.resolve(withString(tc)) });
    const r = await source.lookup('v');
    expect(r).toMatchObject({ signal: { categories: {}, tcf: { value: tc } } });
    expect(source.knowsNothing('v')).toBe(false);
  });

  it('resolution: a hit without a string of its own is checked against the stored one; gdpr=0 turns TCF off', () => {
    const resolver = createConsentResolver({ categories: siteCategories, tcf: tcfOptions });
    const event = { type: 'track', event: 'x', messageId: 'm', timestamp: new Date(NOW).toISOString(), receivedAt: new Date(NOW).toISOString(), context: {}, properties: {}, integrations: {} } as unknown as Event;
    const stored = storeSignal(withString(tc), ids, NOW, reader)!;
    const state = resolver.fromRequest(event, { gpc: false }, new Date(NOW), [stored]);
    expect(state.tcf).toMatchObject({ applies: true, source: 'store', result: { ok: true } });
    expect(state.categories.advertising).toMatchObject({ status: 'granted', source: 'store' });
    expect(tcfVerdict(state.tcf, { vendorId: 7, basis: 'consent', purposes: [1, 3, 4] })).toEqual({ kind: 'allowed' });
    expect(tcfVerdict(state.tcf, { vendorId: 8, basis: 'consent', purposes: [1] })).toMatchObject({ kind: 'denied', reasons: [{ code: 'tcf_vendor_not_consented', id: 8 }] });
    expect(resolver.fromRequest(event, { gpc: false, gdprApplies: false }, new Date(NOW), [stored]).tcf).toEqual({ applies: false });
    const invalid = storeSignal(withString('garbage'), ids, NOW, reader)!;
    expect(tcfVerdict(resolver.fromRequest(event, { gpc: false }, new Date(NOW), [invalid]).tcf, { basis: 'consent', purposes: [1] })).toMatchObject({ kind: 'denied', reasons: [{ code: 'tcf_invalid' }] });
  });

  it("with the hit's own string: the newer one by its own time decides; the hit's invalid string always", () => {
    const older = encodeWithLibrary({ lastUpdated: new Date(DAY - 86_400_000), purposeConsents: [1], vendorConsents: [9] });
    const r = createStoredTcfReader({ tcf: tcfOptions, categories: siteCategories });
    const stored = storeSignal(withString(tc), ids, NOW, r)!;
    const ownOlder = { applies: true, result: r.read(withString(older), NOW)!.result, source: 'query:gdpr_consent' };
    expect(withStoredTcf(ownOlder, [stored], true)).toMatchObject({ source: 'store' });
    const ownSame = { applies: true, result: stored.tcf!.result, source: 'query:gdpr_consent' };
    expect(withStoredTcf(ownSame, [stored], true)).toBe(ownSame);
    const ownInvalid = { applies: true, result: { ok: false as const, reason: 'tcf_undecodable' as const }, source: 'query:gdpr_consent' };
    expect(withStoredTcf(ownInvalid, [stored], true)).toBe(ownInvalid);
    expect(withStoredTcf({ applies: false }, [], undefined)).toEqual({ applies: false });
  });

  it("shares the resolver's reader: a string the hit carries and the profile stores is decoded and cached once", () => {
    const resolver = createConsentResolver({ categories: siteCategories, tcf: tcfOptions });
    const shared = createStoredTcfReader({ tcf: tcfOptions, categories: siteCategories, reader: resolver.tcf });
    expect(resolver.tcf.read(tc, new Date(NOW))).toMatchObject({ ok: true });
    expect(storeSignal(withString(tc), ids, NOW, shared)?.tcf).toMatchObject({ value: tc, result: { ok: true } });
    expect(resolver.tcf.cacheSize).toBe(1);
  });

  it('verify view: the string decides as items where no newer item states the category', () => {
    const c = withString(tc, { analytics: { item: 'analytics', status: 'granted', consentAt: DAY + 10, validUntil: null, source: 'push', expired: false } });
    const view = reader.withItems(c, NOW);
    expect(view.items.advertising).toMatchObject({ status: 'granted', source: 'tcf', consentAt: DAY });
    expect(view.items.analytics).toMatchObject({ status: 'granted', source: 'push' });
    expect(view.items.functional).toBeUndefined();
    expect(reader.withItems(consent({}), NOW)).toEqual(consent({}));
  });
});
