import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { DEFAULT_MAX_IN_FLIGHT } from '../config/schema.ts';
import { loadTemplates } from './load.ts';
import { checkDestinations, resolveDestinations } from './resolve.ts';

const templates = loadTemplates();
const site = { id: 'shop', categories: { advertising: {}, analytics: {} } };

function load(destinations: unknown[], siteOverride: unknown = site) {
  return parseConfig({ site: siteOverride, destinations }, { env: {}, extraChecks: (raw) => checkDestinations(raw, templates) });
}

describe('destination resolution', () => {
  it('applies template consent defaults field by field', () => {
    const config = load([
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 't' } },
      { id: 'meta2', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 't' }, consent: { whenUnknown: 'hold' } },
      { id: 'crm', template: 'webhook', settings: { url: 'https://h.test/' }, integrationNames: ['CRM'] },
    ]);
    const [meta, meta2, crm] = resolveDestinations(config, templates).destinations;
    expect(meta!.policy).toMatchObject({ categories: ['advertising'], combine: 'all', whenUnknown: 'drop' });
    expect(meta2!.policy).toMatchObject({ categories: ['advertising'], whenUnknown: 'hold' });
    expect(crm!.policy).toMatchObject({ categories: [], integrationNames: ['CRM'] });
  });

  it("maxInFlight: the destination's own, else its template's (the GA4 templates: 128, as docs/templates.md says), else 16", () => {
    const config = load([
      { id: 'ga4', template: 'ga4', settings: { measurementId: 'G-ABCD', apiSecret: 's' } },
      { id: 'hits', template: 'ga4-collect', settings: { measurementId: 'G-ABCD' } },
      { id: 'ga4-slow', template: 'ga4', settings: { measurementId: 'G-ABCD', apiSecret: 's' }, maxInFlight: 8 },
      { id: 'meta', template: 'meta-capi', settings: { pixelId: '1234567890', accessToken: 't' } },
    ]);
    expect(resolveDestinations(config, templates).destinations.map((d) => [d.config.id, d.config.maxInFlight])).toEqual([
      ['ga4', 128],
      ['hits', 128],
      ['ga4-slow', 8],
      ['meta', DEFAULT_MAX_IN_FLIGHT],
    ]);
    // The pool has room for the largest default: a request beyond it would wait with its timeout running.
    expect(config.delivery.connectionsPerOrigin).toBeGreaterThanOrEqual(128);
  });

  it('if-configured leaves a destination off while required settings are missing', () => {
    const config = load([{ id: 'meta', template: 'meta-capi', enabled: 'if-configured', settings: { pixelId: '' } }]);
    const r = resolveDestinations(config, templates);
    expect(r.destinations).toEqual([]);
    expect(r.disabled).toEqual([{ id: 'meta', reason: 'settings not set: pixelId, accessToken' }]);
  });

  it('if-configured still rejects a malformed setting', () => {
    expect(() => load([{ id: 'meta', template: 'meta-capi', enabled: 'if-configured', settings: { pixelId: 'abc' } }])).toThrow(
      /destinations\[0\]\.settings\.pixelId: does not match/,
    );
  });

  it('reports a template default category the site does not define', () => {
    expect(() => load([{ id: 'ga4', template: 'ga4', settings: { measurementId: 'G-ABC', apiSecret: 's' } }], { id: 'shop', categories: { stats: {} } })).toThrow(
      /destinations\[0\]\.consent\.categories: template ga4 requires category "analytics" by default/,
    );
  });

  it('reports unknown templates and bad endpoints', () => {
    expect(() => load([{ id: 'x', template: 'nope' }])).toThrow(/destinations\[0\]\.template: unknown template "nope"/);
    expect(() => load([{ id: 'crm', template: 'webhook', settings: { url: 'https://h.test/' }, endpoint: 'http://user:pw@h.test/' }])).toThrow(
      /destinations\[0\]\.endpoint: must not contain credentials/,
    );
  });
});
