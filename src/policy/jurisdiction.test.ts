import { describe, expect, it } from 'vitest';
import { testConfig } from '../../test/helpers.ts';
import type { DataControlMode } from './decide.ts';
import { countryOf, dataControlFor, modeChoiceText, REGION_GROUPS, type Jurisdiction } from './jurisdiction.ts';

const j = (modes: Jurisdiction['modes']): Jurisdiction => ({ header: 'cf-ipcountry', modes });
const sketch = j({ EU: 'opt-in', US: 'opt-out' });

describe('the data control mode of a hit from its region', () => {
  it.each<[string, string | undefined, Jurisdiction | undefined, DataControlMode, DataControlMode, string, string | undefined]>([
    // name, header value, jurisdiction, site mode → mode, rule, matched
    ['no jurisdiction: the site mode, whatever the header', 'DE', undefined, 'opt-out', 'opt-out', 'site', undefined],
    ['an EU country: the EU group (DESIGN\'s sketch)', 'DE', sketch, 'opt-out', 'opt-in', 'group', 'EU'],
    ['case does not matter', 'fr', sketch, 'opt-out', 'opt-in', 'group', 'EU'],
    ['a country\'s own key', 'US', sketch, 'opt-in', 'opt-out', 'country', 'US'],
    ['a country no key lists: the site mode', 'BR', sketch, 'disabled', 'disabled', 'unlisted', undefined],
    ['Norway is EEA, not EU', 'NO', sketch, 'opt-out', 'opt-out', 'unlisted', undefined],
    ['Norway under an EEA key', 'NO', j({ EEA: 'opt-in' }), 'opt-out', 'opt-in', 'group', 'EEA'],
    ['Switzerland is in neither', 'CH', j({ EU: 'opt-in', EEA: 'opt-in' }), 'opt-out', 'opt-out', 'unlisted', undefined],
    ['of two groups, the smaller (EU before EEA)', 'DE', j({ EEA: 'opt-in', EU: 'opt-out' }), 'disabled', 'opt-out', 'group', 'EU'],
    ['a country key beats its group', 'DE', j({ EU: 'opt-in', DE: 'opt-out' }), 'disabled', 'opt-out', 'country', 'DE'],
    ['the UK group is GB', 'GB', j({ UK: 'opt-in' }), 'opt-out', 'opt-in', 'group', 'UK'],
    ['a header saying UK is GB', 'uk', j({ UK: 'opt-in' }), 'opt-out', 'opt-in', 'group', 'UK'],
    ['GB is not in the EU', 'GB', sketch, 'opt-out', 'opt-out', 'unlisted', undefined],
    ['EL is Greece', 'EL', sketch, 'opt-out', 'opt-in', 'group', 'EU'],
    ['Cloudflare\'s unknown (XX): no region', 'XX', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['Cloudflare\'s Tor (T1): no region', 'T1', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['a continent (EU) is no country', 'EU', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['ZZ (user-assigned): no region', 'ZZ', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['three letters: no region', 'DEU', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['one letter: no region', 'D', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['a header sent twice: no region', 'DE, FR', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['spaces around: no region (the CDN sends the bare code)', ' DE', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['non-ASCII letters: no region', 'DÉ', sketch, 'opt-out', 'opt-out', 'no_region', undefined],
    ['no header at all', undefined, sketch, 'opt-in', 'opt-in', 'no_region', undefined],
  ])('%s', (_name, value, jurisdiction, site, mode, rule, matched) => {
    const choice = dataControlFor(value, jurisdiction, site);
    expect(choice.mode).toBe(mode);
    expect(choice.rule).toBe(rule);
    expect(choice.matched).toBe(matched);
    expect(modeChoiceText(choice)).toMatch(new RegExp(`→ ${mode}$`));
  });

  it('says what it read and why', () => {
    expect(dataControlFor('de', sketch, 'opt-out')).toEqual({ mode: 'opt-in', rule: 'group', header: 'cf-ipcountry', value: 'de', region: 'DE', matched: 'EU' });
    expect(modeChoiceText(dataControlFor('de', sketch, 'opt-out'))).toBe('cf-ipcountry: DE → EU → opt-in');
    expect(modeChoiceText(dataControlFor('XX', sketch, 'opt-out'))).toBe('cf-ipcountry: "XX", no region → site.dataControlMode → opt-out');
    expect(modeChoiceText(dataControlFor(undefined, sketch, 'opt-out'))).toBe('cf-ipcountry: absent, no region → site.dataControlMode → opt-out');
    expect(modeChoiceText(dataControlFor('US', sketch, 'opt-in'))).toBe('cf-ipcountry: US → opt-out');
  });

  it('a key naming a prototype property is no region (own keys only)', () => {
    expect(dataControlFor('DE', j(JSON.parse('{"__proto__": "opt-in"}') as Jurisdiction['modes']), 'opt-out').mode).toBe('opt-out');
    expect(countryOf('__')).toBeUndefined();
  });
});

describe('the built-in groups', () => {
  it('EU has its 27 member states, EEA adds IS, LI, NO, UK is GB', () => {
    expect(new Set(REGION_GROUPS.EU).size).toBe(27);
    expect([...REGION_GROUPS.EEA!].sort()).toEqual([...REGION_GROUPS.EU!, 'IS', 'LI', 'NO'].sort());
    expect(REGION_GROUPS.UK).toEqual(['GB']);
    for (const c of REGION_GROUPS.EEA!) expect(countryOf(c)).toBe(c);
  });

  it('are the groups the config accepts, and every member is a country key the config accepts', () => {
    const modes = Object.fromEntries([...Object.keys(REGION_GROUPS), ...REGION_GROUPS.EEA!].map((k) => [k, 'opt-in']));
    const config = testConfig({ site: { id: 's', jurisdiction: { header: 'cloudfront-viewer-country', modes } } });
    expect(config.site.jurisdiction).toEqual({ header: 'cloudfront-viewer-country', modes });
    expect(() => testConfig({ site: { id: 's', jurisdiction: { header: 'CF-IPCountry' } } })).toThrow(/site\.jurisdiction\.header: a header name in lower case/);
    expect(() => testConfig({ site: { id: 's', jurisdiction: { modes: { EUR: 'opt-in' } } } })).toThrow(/site\.jurisdiction\.modes\.EUR: not a region/);
    for (const bad of ['XX', 'ZZ', 'QM', 'AP', 'EL', 'de', 'D']) {
      expect(() => testConfig({ site: { id: 's', jurisdiction: { modes: { [bad]: 'opt-in' } } } })).toThrow(/not a region/);
    }
    expect(() => testConfig({ site: { id: 's', jurisdiction: { modes: { DE: 'strict' } } } })).toThrow(/site\.jurisdiction\.modes\.DE/);
    expect(testConfig({ site: { id: 's', jurisdiction: {} } }).site.jurisdiction).toEqual({ header: 'cf-ipcountry', modes: {} });
  });
});
