import { resolve } from 'node:path';
import { formatPath, type ConfigIssue } from '../config/issues.ts';
import { loadConfigWithTemplates, type LoadedConfig } from '../destinations/load-config.ts';
import { displayPath, type TemplateFileProblem } from '../destinations/load.ts';
import { resolveDestinations } from '../destinations/resolve.ts';
import { ConfigError, TemplateError } from '../errors.ts';
import { EXIT_FAILED, EXIT_OK, type CommandIo } from './exit.ts';

/**
 * `tagwarden validate [config]`: the config checked as the server starts it (src/main.ts, through
 * loadConfigWithTemplates), then its destinations bound to their templates as createApp binds
 * them (resolveDestinations). Nothing is opened: no store, no port, no vendor.
 */

/** One problem: a config key (`destinations[0].settings.pixelId`), or a template file and its JSON path. */
export interface ValidateError {
  path?: string;
  file?: string;
  message: string;
}

export interface ValidateSummary {
  site: { id: string; dataControlMode: string; jurisdictionHeader?: string };
  destinations: { id: string; template: string; version: number; dryRun: boolean }[];
  disabled: { id: string; reason: string }[];
  templates: { dir: string; loaded: { id: string; version: number }[] };
}

export type ValidateResult = ({ ok: true } & ValidateSummary) | { ok: false; errors: ValidateError[] };

/** Every problem the error carries: the config's issues, each template file's, else its message. */
function errorsOf(e: unknown): ValidateError[] {
  if (e instanceof ConfigError && Array.isArray(e.details) && e.details.length > 0) {
    return (e.details as ConfigIssue[]).map((i) => ({ path: formatPath(i.path), message: i.message }));
  }
  if (e instanceof TemplateError && Array.isArray(e.details)) {
    return (e.details as TemplateFileProblem[]).flatMap((p) => p.issues.map((i) => ({ file: displayPath(p.file), ...(i.path === '' ? {} : { path: i.path }), message: i.message })));
  }
  if (e instanceof ConfigError || e instanceof TemplateError) return [{ message: e.message }];
  throw e;
}

export function validateConfig(path: string, env: Readonly<Record<string, string | undefined>>): ValidateResult {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfigWithTemplates(path, env);
  } catch (e) {
    return { ok: false, errors: errorsOf(e) };
  }
  const { config, templates, templatesDir } = loaded;
  try {
    const resolution = resolveDestinations(config, templates);
    const jurisdiction = config.site.jurisdiction;
    return {
      ok: true,
      site: { id: config.site.id, dataControlMode: config.site.dataControlMode, ...(jurisdiction === undefined ? {} : { jurisdictionHeader: jurisdiction.header }) },
      destinations: resolution.destinations.map((d) => ({ id: d.config.id, template: d.bound.templateId, version: templates.get(d.bound.templateId)?.version ?? 0, dryRun: d.dryRun })),
      disabled: resolution.disabled,
      templates: { dir: displayPath(resolve(templatesDir)), loaded: [...templates.values()].map((t) => ({ id: t.id, version: t.version })).sort((a, b) => a.id.localeCompare(b.id)) },
    };
  } catch (e) {
    // Binding a destination to its template (as createApp does); its message names the destination.
    if (e instanceof ConfigError || e instanceof TemplateError) return { ok: false, errors: [{ message: e.message }] };
    throw e;
  }
}

function summaryText(shown: string, s: ValidateSummary): string {
  const lines = [`OK ${shown}`];
  lines.push(`site: ${s.site.id} (${s.site.dataControlMode}${s.site.jurisdictionHeader === undefined ? '' : `; per region by ${s.site.jurisdictionHeader}`})`);
  lines.push(`destinations: ${s.destinations.length} enabled, ${s.disabled.length} disabled`);
  for (const d of s.destinations) lines.push(`  ${d.id}: ${d.template} v${d.version}${d.dryRun ? ' (dry run)' : ''}`);
  for (const d of s.disabled) lines.push(`  ${d.id}: disabled (${d.reason})`);
  lines.push(`templates: ${s.templates.loaded.length} in ${s.templates.dir}: ${s.templates.loaded.map((t) => `${t.id} v${t.version}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** Prints OK and the summary, or FAIL and every problem (both on stdout: the command's answer); exit 0 or 1. */
export function validateCommand(path: string, env: Readonly<Record<string, string | undefined>>, json: boolean, io: CommandIo): number {
  const shown = displayPath(resolve(path));
  const result = validateConfig(path, env);
  if (json) {
    io.out(`${JSON.stringify({ config: shown, ...result })}\n`);
  } else if (result.ok) {
    io.out(summaryText(shown, result));
  } else {
    const lines = result.errors.map((e) => `  ${[e.file, e.path].filter((p) => p !== undefined).join(': ')}${e.file === undefined && e.path === undefined ? '' : ': '}${e.message}`);
    io.out(`FAIL ${shown}: ${result.errors.length} problem${result.errors.length === 1 ? '' : 's'}\n${lines.join('\n')}\n`);
  }
  return result.ok ? EXIT_OK : EXIT_FAILED;
}
