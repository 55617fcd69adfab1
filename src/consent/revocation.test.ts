import { describe, expect, test } from 'vitest';
import type { CategorySignal } from './merge.ts';
import { FakeClock } from '../lib/fake-clock.ts';
import { createRevocationCheck, revokedSince } from './revocation.ts';

const HIT = Date.UTC(2026, 10, 23, 12);
const iso = (ms: number): string => new Date(ms).toISOString();
const v = (visitorId: string) => ({ visitorId, userId: undefined });

describe('revokedSince', () => {
  const signal = (categories: CategorySignal['categories'], at: number, atByCategory?: Record<string, number>): CategorySignal => ({
    source: 'store',
    at,
    categories,
    ...(atByCategory === undefined ? {} : { atByCategory }),
  });
  test.each<[string, CategorySignal, readonly string[], boolean]>([
    ['a denial after the hit', signal({ advertising: 'denied' }, HIT + 1), ['advertising'], true],
    ['a denial before the hit (the hit carried newer consent)', signal({ advertising: 'denied' }, HIT - 1), ['advertising'], false],
    ['a denial at the same millisecond', signal({ advertising: 'denied' }, HIT), ['advertising'], false],
    ['a grant after the hit', signal({ advertising: 'granted' }, HIT + 1), ['advertising'], false],
    ['a denial of another category', signal({ analytics: 'denied' }, HIT + 1), ['advertising'], false],
    ['one of two required categories denied since', signal({ analytics: 'granted', advertising: 'denied' }, HIT + 1), ['analytics', 'advertising'], true],
    ['the per-category time wins over the signal time', signal({ advertising: 'denied' }, HIT + 5, { advertising: HIT - 5 }), ['advertising'], false],
    ['an undated denial', signal({ advertising: 'denied' }, Number.NaN), ['advertising'], false],
  ])('%s', (_name, s, categories, expected) => {
    expect(revokedSince(s, categories, HIT)).toBe(expected);
  });
});

describe('createRevocationCheck', () => {
  function setup(answers: Record<string, { signal: CategorySignal } | { failure: string }>) {
    const asked: string[] = [];
    const check = createRevocationCheck({
      store: {
        lookupSubject: (subject) => {
          const key = `${subject.type}:${subject.id}`;
          asked.push(key);
          return Promise.resolve(answers[key] ?? { failure: 'store_nothing' });
        },
      },
      categoriesOf: (id) => ({ meta: ['advertising'], meta2: ['advertising'], crm: [] })[id],
      ttlMs: 60_000,
    });
    return { check, asked };
  }
  const revoked = { signal: { source: 'store', at: HIT + 1000, categories: { advertising: 'denied' as const } } };

  test('drops the events whose visitor revoked since, keeps the rest, asks once per visitor', async () => {
    const { check, asked } = setup({ 'visitor:v1': revoked });
    check.remember('meta', 'a', v('v1'), iso(HIT));
    check.remember('meta', 'b', v('v1'), iso(HIT + 2000)); // arrived after the revocation: its own consent is newer
    check.remember('meta', 'c', v('v2'), iso(HIT));
    check.remember('meta', 'd', { visitorId: undefined, userId: undefined }, iso(HIT));
    expect([...(await check.recheck('meta', ['a', 'b', 'c', 'd', 'unknown']))].sort()).toEqual(['b', 'c', 'd', 'unknown']);
    expect(asked.sort()).toEqual(['visitor:v1', 'visitor:v2']);
  });

  test('an event settled by a destination is forgotten for it, not for the others', async () => {
    const { check } = setup({ 'visitor:v1': revoked });
    check.remember('meta', 'a', v('v1'), iso(HIT));
    check.remember('meta2', 'a', v('v1'), iso(HIT));
    check.settled('meta', ['a']);
    expect([...(await check.recheck('meta', ['a']))]).toEqual(['a']);
    expect([...(await check.recheck('meta2', ['a']))]).toEqual([]);
  });

  test('a destination without required categories, or unknown, is not checked', async () => {
    const { check, asked } = setup({ 'visitor:v1': revoked });
    check.remember('crm', 'a', v('v1'), iso(HIT));
    expect([...(await check.recheck('crm', ['a']))]).toEqual(['a']);
    expect([...(await check.recheck('other', ['a']))]).toEqual(['a']);
    expect(asked).toEqual([]);
  });

  test('regression: an event with a userId but no visitor id was never re-checked', async () => {
    const { check, asked } = setup({ 'user:u1': revoked });
    check.remember('meta', 'a', { visitorId: undefined, userId: 'u1' }, iso(HIT));
    check.remember('meta', 'b', { visitorId: 'v9', userId: 'u1' }, iso(HIT)); // the user revoked, the visitor said nothing
    check.remember('meta', 'c', { visitorId: 'v9', userId: undefined }, iso(HIT));
    expect([...(await check.recheck('meta', ['a', 'b', 'c']))]).toEqual(['c']);
    // One read per subject, not per event.
    expect(asked.sort()).toEqual(['user:u1', 'visitor:v9']);
  });

  test('a store that cannot be read rejects: the delivery parks rather than send unchecked', async () => {
    const { check } = setup({ 'visitor:v1': { failure: 'store_error' } });
    check.remember('meta', 'a', v('v1'), iso(HIT));
    await expect(check.recheck('meta', ['a'])).rejects.toThrow(/store_error/);
  });

  test('an event past the ttl is no longer held (sent unchecked, as one never remembered); the bound drops the oldest', async () => {
    const clock = new FakeClock(HIT);
    const asked: string[] = [];
    const check = createRevocationCheck({
      store: {
        lookupSubject: (subject) => {
          asked.push(subject.id);
          return Promise.resolve(revoked);
        },
      },
      categoriesOf: () => ['advertising'],
      ttlMs: 1_000,
      maxEntries: 2,
      clock,
    });
    check.remember('meta', 'a', v('v1'), iso(HIT));
    clock.advance(1_000);
    expect([...(await check.recheck('meta', ['a']))]).toEqual(['a']);
    expect(asked).toEqual([]);
    check.remember('meta', 'b', v('v2'), iso(HIT));
    check.remember('meta2', 'c', v('v3'), iso(HIT));
    check.remember('meta2', 'd', v('v4'), iso(HIT)); // over the bound of 2: meta2's oldest, c, goes
    expect([...(await check.recheck('meta2', ['c', 'd']))]).toEqual(['c']);
    expect([...(await check.recheck('meta', ['b']))]).toEqual([]);
    expect(asked.sort()).toEqual(['v2', 'v4']);
  });
});
