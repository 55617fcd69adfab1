import { readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { crossFieldIssues } from './cross-checks.ts';
import { expandEnv, type EnvIssue } from './env.ts';
import { formatIssues, type ConfigIssue } from './issues.ts';
import { withPortFromEnv } from './port-env.ts';
import { configSchema, type ParsedConfig } from './schema.ts';
import { deepFreeze } from '../lib/freeze.ts';

/** The largest config file read; a config is a few KiB, anything near this is a mistake. */
const MAX_CONFIG_BYTES = 1_048_576;

export type Config = Readonly<ParsedConfig>;

export interface LoadOptions {
  /** Environment for `${VAR}` references, and `PORT`, which overrides `server.port`. */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Checks that need more than the schema (template exists, template settings valid). Runs on the
   * raw destinations too when the schema failed elsewhere, so every problem is reported at once.
   */
  extraChecks?: (raw: unknown, parsed: ParsedConfig | undefined) => ConfigIssue[];
}

/** Maps zod's issues to ours; a missing field reads `required`, an unknown key names the key. */
function fromZod(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...issue.path, key], message: 'unknown key' });
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      out.push({ path: issue.path, message: 'required' });
    } else {
      out.push({ path: issue.path, message: issue.message });
    }
  }
  return out;
}

/** Validates an already parsed config object (from YAML/JSON or a test). Throws ConfigError listing every problem. */
export function parseConfig(raw: unknown, options: LoadOptions, source = 'config'): Config {
  const envIssues: EnvIssue[] = [];
  const issues: ConfigIssue[] = [];
  const expanded = withPortFromEnv(expandEnv(raw, options.env, envIssues), options.env, issues);
  issues.unshift(...envIssues);
  const result = configSchema.safeParse(expanded);
  if (!result.success) issues.push(...fromZod(result.error));
  issues.push(...crossFieldIssues(expanded));
  if (options.extraChecks) issues.push(...options.extraChecks(expanded, result.success ? result.data : undefined));
  if (issues.length > 0 || !result.success) {
    throw new ConfigError(`invalid configuration (${source}):\n${formatIssues(issues)}`, { details: issues });
  }
  return deepFreeze(result.data);
}

/** Reads a YAML or JSON file (by extension; YAML otherwise) and validates it. */
export function loadConfigFile(path: string, options: LoadOptions): Config {
  const abs = resolve(path);
  let text: string;
  try {
    const size = statSync(abs).size;
    if (size > MAX_CONFIG_BYTES) throw new ConfigError(`file is ${size} bytes, more than ${MAX_CONFIG_BYTES}`);
    text = readFileSync(abs, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read configuration ${abs}: ${(cause as Error).message}`, { cause });
  }
  let raw: unknown;
  try {
    raw = extname(abs) === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (cause) {
    throw new ConfigError(`cannot parse configuration ${abs}: ${(cause as Error).message}`, { cause });
  }
  return parseConfig(raw ?? {}, options, abs);
}

/** `--config <path>` wins, then TAGWARDEN_CONFIG, then config/tagwarden.yaml. */
export function configPathFrom(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string {
  const i = argv.indexOf('--config');
  if (i >= 0) {
    const p = argv[i + 1];
    if (p === undefined || p.startsWith('--')) throw new ConfigError('--config needs a path');
    return p;
  }
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq !== undefined) return eq.slice('--config='.length);
  return env.TAGWARDEN_CONFIG ?? 'config/tagwarden.yaml';
}

/** Reads the process environment: the one place in Tagwarden that does. */
export function processEnv(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

