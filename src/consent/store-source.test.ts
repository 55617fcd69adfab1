import { describe, expect, it } from 'vitest';
import type { SubjectConsent } from '../store/types.ts';
import { chainSources, createStoreSource, storeSignal } from './store-source.ts';
import type { ConsentSource } from './upstream/source.ts';
import { systemClock } from '../lib/clock.ts';
import { FakeClock } from '../lib/fake-clock.ts';

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
    expect(s).toEqual({ source: 'store', at: 20, atByCategory: { analytics: 10, advertising: 20 }, categories: { analytics: 'granted', advertising: 'denied' } });
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
