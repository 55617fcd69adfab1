import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '../../http/errors.ts';
import { parseConfig } from '../../config/load.ts';
import type { ItemState, SubjectConsent } from '../../store/types.ts';
import { consentReadRouter, defaultVerifyCategories } from './read-routes.ts';

describe('defaultVerifyCategories (seed cookieboss-consent-verification-api.txt names)', () => {
  it.each<[string[], Record<string, string>]>([
    [['necessary', 'analytics', 'advertising', 'functional'], { marketing: 'advertising', necessary: 'necessary', analytics: 'analytics', functional: 'functional' }],
    [['marketing', 'analytics'], { marketing: 'marketing', analytics: 'analytics' }],
    // A site with both: its own marketing is CookieBoss's; advertising keeps its id.
    [['advertising', 'marketing'], { marketing: 'marketing', advertising: 'advertising' }],
    [['ads', 'newsletter', 'constructor'], { ads: 'ads', newsletter: 'newsletter', constructor: 'constructor' }],
    [[], {}],
  ])('%j → %j', (site, expected) => {
    const got = defaultVerifyCategories(site);
    expect(got).toEqual(expected);
    for (const k of Object.keys(expected)) expect(Object.hasOwn(got, k)).toBe(true);
  });
});

describe('verify answer', () => {
  const item = (name: string, status: 'granted' | 'denied', validUntil: number | null = null): ItemState => ({ item: name, status, consentAt: 1000, validUntil, source: 'push', expired: false });
  const consent = {
    items: { advertising: item('advertising', 'granted'), analytics: item('analytics', 'granted', 5000), functional: item('functional', 'denied') },
    consentAt: 1000,
    geoCountry: 'DE',
  } as unknown as SubjectConsent;
  const app = (verifyCategories?: Record<string, string>, now = 2000) => {
    const a = express();
    a.use(
      consentReadRouter({
        siteId: 's',
        categories: ['necessary', 'advertising', 'analytics', 'functional'],
        ...(verifyCategories === undefined ? {} : { verifyCategories }),
        store: { read: () => Promise.resolve(consent) },
        guard: () => (_req, _res, next) => next(),
        clock: { now: () => now } as never,
      }),
    );
    a.use(errorHandler(pino({ level: 'silent' })));
    return a;
  };

  it('CookieBoss names by default; never stated (necessary) absent; expired answers false', async () => {
    expect((await request(app()).get('/api/v1/public/sites/s/consent/verify?visitor_id=v')).body.categories).toEqual({ marketing: true, analytics: true, functional: false });
    expect((await request(app(undefined, 6000)).get('/api/v1/public/sites/s/consent/verify?visitor_id=v')).body.categories).toEqual({ marketing: true, analytics: false, functional: false });
  });

  it('a configured map answers its names only', async () => {
    const r = await request(app({ ads: 'advertising', stats: 'analytics', necessary: 'necessary' })).get('/api/v1/public/sites/s/consent/verify?visitor_id=v');
    expect(r.body).toEqual({ hasConsent: true, categories: { ads: true, stats: true }, consentedAt: new Date(1000).toISOString(), geoCountry: 'DE' });
  });
});

describe('config api.verify.categories', () => {
  const parse = (api: Record<string, unknown>) => parseConfig({ site: { id: 's', categories: { advertising: {}, analytics: {} } }, api }, { env: {} });
  it('maps answer names onto site categories, which must exist', () => {
    expect(parse({ verify: { categories: { marketing: 'advertising' } } }).api.verify.categories).toEqual({ marketing: 'advertising' });
    expect(parse({}).api.verify.categories).toBeUndefined();
    expect(() => parse({ verify: { categories: { marketing: 'ads' } } })).toThrow(/api\.verify\.categories\.marketing.*unknown category "ads"/s);
    expect(() => parse({ verify: { categories: { __proto__x: 'advertising' } } })).toThrow(/__proto__x: Invalid key/);
    expect(() => parse({ verify: { categories: {} } })).toThrow(/at least one/);
  });
});
