/**
 * `${NAME}` and `${NAME:-fallback}` references inside string values of the config file, so
 * secrets stay out of it. Substitution happens on parsed values, never on the file's text, so an
 * environment value cannot inject YAML structure. `$${` stands for a literal `${`.
 */
export interface EnvIssue {
  path: (string | number)[];
  message: string;
}

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function expandEnv(
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  issues: EnvIssue[],
  path: (string | number)[] = [],
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(REF, (whole: string, name: string | undefined, fallback: string | undefined) => {
      if (name === undefined) return '${';
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      issues.push({ path, message: `environment variable ${name} is not set (write \${${name}:-} to allow it empty)` });
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, issues, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // defineProperty, not assignment: a `__proto__` key must stay a key (and fail the strict
      // schema), not become this object's prototype.
      Object.defineProperty(out, k, { value: expandEnv(v, env, issues, [...path, k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
