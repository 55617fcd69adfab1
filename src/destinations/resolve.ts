import type { Config } from '../config/load.ts';
import type { ConfigIssue } from '../config/issues.ts';
import { DEFAULT_MAX_IN_FLIGHT, type DestinationConfig } from '../config/schema.ts';
import type { PolicyDestination } from '../policy/decide.ts';
import { bindDestination, validateEndpoint, validateSettings } from './bind.ts';
import { isPlainRecord } from '../lib/dotted.ts';
import type { CompiledTemplate } from './load.ts';
import type { BoundDestination } from './types.ts';
import { ConfigError } from '../errors.ts';

export type TemplateCatalog = ReadonlyMap<string, CompiledTemplate>;

/** A configured destination with template defaults applied, ready for the pipeline. */
export interface ResolvedDestination {
  /** The destination's config, `maxInFlight` resolved (its own, else the template's, else DEFAULT_MAX_IN_FLIGHT). */
  config: DestinationConfig & { maxInFlight: number };
  policy: PolicyDestination;
  bound: BoundDestination;
  dryRun: boolean;
  /** Send the visitor's IP truncated (IPv4 /24, IPv6 /48). */
  truncateIp: boolean;
}

export interface Resolution {
  destinations: ResolvedDestination[];
  /** Destinations left off (`enabled: false`, or `if-configured` with settings missing), with why. */
  disabled: { id: string; reason: string }[];
}

/**
 * Config checks that need the templates: the template exists, its settings are valid, the
 * endpoint override is usable, and the categories its defaults require exist on the site. Works
 * on the raw (env-expanded) config, so it reports even when the schema failed elsewhere.
 */
export function checkDestinations(raw: unknown, templates: TemplateCatalog): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isPlainRecord(raw) || !Array.isArray(raw.destinations)) return issues;
  const site = isPlainRecord(raw.site) ? raw.site : {};
  const categories = isPlainRecord(site.categories) ? site.categories : {};
  raw.destinations.forEach((d: unknown, i) => {
    if (!isPlainRecord(d) || typeof d.template !== 'string') return;
    const template = templates.get(d.template);
    if (template === undefined) {
      issues.push({ path: ['destinations', i, 'template'], message: `unknown template "${d.template}" (known: ${[...templates.keys()].join(', ')})` });
      return;
    }
    const settingIssues = validateSettings(template, d.settings);
    const onlyMissing = settingIssues.every((s) => s.message === 'required');
    if (!(d.enabled === false || (d.enabled === 'if-configured' && onlyMissing))) {
      for (const s of settingIssues) issues.push({ path: ['destinations', i, 'settings', ...s.path], message: s.message });
    }
    if (d.endpoint !== undefined) {
      const why = validateEndpoint(d.endpoint);
      if (why !== undefined) issues.push({ path: ['destinations', i, 'endpoint'], message: why });
    }
    const consent = isPlainRecord(d.consent) ? d.consent : {};
    if (consent.categories === undefined) {
      for (const c of template.consent?.categories ?? []) {
        if (!Object.hasOwn(categories, c)) {
          issues.push({
            path: ['destinations', i, 'consent', 'categories'],
            message: `template ${template.id} requires category "${c}" by default, which site.categories does not define; list this destination's categories here`,
          });
        }
      }
    }
  });
  return issues;
}

/** Binds every enabled destination. Assumes the config passed checkDestinations. */
export function resolveDestinations(config: Config, templates: TemplateCatalog): Resolution {
  const destinations: ResolvedDestination[] = [];
  const disabled: Resolution['disabled'] = [];
  for (const d of config.destinations) {
    const template = templates.get(d.template);
    if (template === undefined) throw new ConfigError(`destination ${d.id}: unknown template ${d.template}`);
    if (d.enabled === false) {
      disabled.push({ id: d.id, reason: 'enabled: false' });
      continue;
    }
    if (d.enabled === 'if-configured') {
      const missing = validateSettings(template, d.settings).map((s) => s.path.join('.'));
      if (missing.length > 0) {
        disabled.push({ id: d.id, reason: `settings not set: ${missing.join(', ')}` });
        continue;
      }
    }
    const bound = bindDestination({ id: d.id, template, settings: d.settings, ...(d.endpoint === undefined ? {} : { endpoint: d.endpoint }) });
    const defaults = template.consent;
    destinations.push({
      config: { ...d, maxInFlight: d.maxInFlight ?? template.request.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT },
      bound,
      dryRun: d.dryRun,
      truncateIp: d.truncateIp,
      policy: {
        id: d.id,
        categories: d.consent?.categories ?? defaults?.categories ?? [],
        combine: d.consent?.combine ?? defaults?.combine ?? 'all',
        whenUnknown: d.consent?.whenUnknown ?? defaults?.whenUnknown ?? 'drop',
        whenGpc: d.consent?.whenGpc ?? 'drop',
        integrationNames: d.integrationNames ?? [],
        redactions: bound.redactions,
        tcf: d.consent?.tcf,
      },
    });
  }
  return { destinations, disabled };
}
