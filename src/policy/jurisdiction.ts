import type { DataControlMode } from './decide.ts';

/**
 * The data control mode of one hit from the visitor's region (DESIGN.md "Data control mode": "The
 * mode may depend on the visitor's jurisdiction (a configured geo header), e.g. EU → opt-in").
 * Pure: the region is the value of a header the CDN sets (config `site.jurisdiction.header`),
 * read with the hit's other signals (src/consent/signals.ts) and interpreted here.
 */

/** The 27 member states of the European Union (ISO 3166-1 alpha-2; Greece is GR, not EL). */
const EU = ['AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT', 'LU', 'LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK'] as const;

/**
 * Built-in region groups a `modes` key may name. EEA: the EU and Iceland, Liechtenstein, Norway
 * (the GDPR applies there through the EEA agreement). UK: the United Kingdom, whose ISO code is GB
 * (the UK GDPR and PECR).
 */
export const REGION_GROUPS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  EU: Object.freeze([...EU]),
  EEA: Object.freeze([...EU, 'IS', 'LI', 'NO']),
  UK: Object.freeze(['GB']),
});

/**
 * ISO 3166-1 alpha-2 codes that name no country: the user-assigned ranges (AA, QM–QZ, XA–XZ, ZZ:
 * Cloudflare sends XX for "unknown"), and EU and AP, which some geo databases give for addresses
 * they place only on a continent. T1 (Cloudflare's Tor) is not two letters.
 */
function nameNoCountry(code: string): boolean {
  return code === 'AA' || code === 'ZZ' || code === 'EU' || code === 'AP' || code[0] === 'X' || (code[0] === 'Q' && code[1]! >= 'M');
}

/** Codes ISO 3166 reserves for a country that has another. */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ['UK', 'GB'],
  ['EL', 'GR'],
]);

/**
 * The country a geo header's value names, upper-cased: exactly two ASCII letters (any case), not a
 * code that names no country. Anything else (absent, `XX`, `T1`, `DE, FR` from a header sent
 * twice, a longer string): no region. `UK` and `EL` read as GB and GR.
 */
export function countryOf(value: string | undefined): string | undefined {
  if (value === undefined || !/^[A-Za-z]{2}$/.test(value)) return undefined;
  const code = value.toUpperCase();
  if (nameNoCountry(code)) return undefined;
  return ALIASES.get(code) ?? code;
}

export interface Jurisdiction {
  /** The header the CDN sets to the visitor's country (lower-case), e.g. `cf-ipcountry`. */
  header: string;
  /** Country code or group name → mode. */
  modes: Readonly<Record<string, DataControlMode>>;
}

/** Why a hit has the mode it has: the choice, with what it was made from (shown by explain). */
export interface ModeChoice {
  mode: DataControlMode;
  /**
   * `site`: no jurisdiction configured; `no_region`: the header is missing or names no country;
   * `unlisted`: the country matches no `modes` key; `country`: its own key; `group`: a group it
   * belongs to (`matched` says which).
   */
  rule: 'site' | 'no_region' | 'unlisted' | 'country' | 'group';
  /** The configured header; absent without a jurisdiction. */
  header?: string;
  /** The header's value as sent (bounded by the reader), when there was one. */
  value?: string;
  /** The country it names, when it names one. */
  region?: string;
  /** The `modes` key that decided (the country or the group). */
  matched?: string;
}

/**
 * The mode for a hit whose geo header says `value`. A country's own key beats a group; among the
 * groups a country belongs to, the smallest decides (EU before EEA: the more specific entry, as a
 * country's own is); countries no key matches, and hits with no valid region, get the site's
 * `dataControlMode`. Config validation (src/config/schema.ts) keeps keys to countries and groups.
 */
export function dataControlFor(value: string | undefined, jurisdiction: Jurisdiction | undefined, siteMode: DataControlMode): ModeChoice {
  if (jurisdiction === undefined) return { mode: siteMode, rule: 'site' };
  const seen = value === undefined ? {} : { value };
  const region = countryOf(value);
  if (region === undefined) return { mode: siteMode, rule: 'no_region', header: jurisdiction.header, ...seen };
  const base = { header: jurisdiction.header, ...seen, region };
  const modes = jurisdiction.modes;
  const own = Object.hasOwn(modes, region) && !Object.hasOwn(REGION_GROUPS, region) ? modes[region] : undefined;
  if (own !== undefined) return { mode: own, rule: 'country', ...base, matched: region };
  let best: { name: string; size: number } | undefined;
  for (const [name, members] of Object.entries(REGION_GROUPS)) {
    if (!Object.hasOwn(modes, name) || !members.includes(region)) continue;
    if (best === undefined || members.length < best.size || (members.length === best.size && name < best.name)) best = { name, size: members.length };
  }
  const group = best === undefined ? undefined : modes[best.name];
  if (best !== undefined && group !== undefined) return { mode: group, rule: 'group', ...base, matched: best.name };
  return { mode: siteMode, rule: 'unlisted', ...base };
}

/** One line saying why, for explain: e.g. `cf-ipcountry: DE → EU → opt-in`. */
export function modeChoiceText(c: ModeChoice): string {
  switch (c.rule) {
    case 'site':
      return `site.dataControlMode (no site.jurisdiction) → ${c.mode}`;
    case 'no_region':
      return `${c.header ?? ''}: ${c.value === undefined ? 'absent' : JSON.stringify(c.value)}, no region → site.dataControlMode → ${c.mode}`;
    case 'unlisted':
      return `${c.header ?? ''}: ${c.region ?? ''}, not in site.jurisdiction.modes → site.dataControlMode → ${c.mode}`;
    case 'country':
      return `${c.header ?? ''}: ${c.region ?? ''} → ${c.mode}`;
    case 'group':
      return `${c.header ?? ''}: ${c.region ?? ''} → ${c.matched ?? ''} → ${c.mode}`;
  }
}
