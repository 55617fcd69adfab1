import { loadConfigFile, type Config } from '../config/load.ts';
import { DEFAULT_TEMPLATES_DIR, loadTemplates } from './load.ts';
import { checkDestinations, type TemplateCatalog } from './resolve.ts';

export interface LoadedConfig {
  config: Config;
  /** Every template of `templatesDir`, compiled. */
  templates: TemplateCatalog;
  /** Where the templates were read: the config's `templatesDir`, else the templates/ shipped with Tagwarden. */
  templatesDir: string;
}

/**
 * The config file validated as the server starts it (src/main.ts) and `tagwarden validate` checks
 * it: the schema and cross-field checks (src/config/), then the templates of its `templatesDir`,
 * which its destinations must name with valid settings (checkDestinations). Throws a ConfigError
 * listing every config problem, or a TemplateError listing every template problem.
 */
export function loadConfigWithTemplates(path: string, env: Readonly<Record<string, string | undefined>>): LoadedConfig {
  let templates: TemplateCatalog | undefined;
  let templatesDir = DEFAULT_TEMPLATES_DIR;
  const config = loadConfigFile(path, {
    env,
    extraChecks: (raw) => {
      const dir = (raw as { templatesDir?: unknown }).templatesDir;
      if (typeof dir === 'string') templatesDir = dir;
      templates = loadTemplates(templatesDir);
      return checkDestinations(raw, templates);
    },
  });
  return { config, templates: templates!, templatesDir };
}
