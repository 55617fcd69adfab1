/**
 * The metric names a PromQL expression reads, for checking alert rules against the registry
 * (test/monitoring-alerts.test.ts). Not a PromQL parser: it drops what cannot be a metric name
 * (strings, label matchers, `by (...)`-style label lists, durations, numbers), then keeps the
 * identifiers that are not followed by `(` (functions, aggregations) and are not keywords.
 * https://prometheus.io/docs/prometheus/latest/querying/basics/
 */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

export function promqlMetricNames(expr: string): string[] {
  const text = expr
    // String literals (label values, label_replace arguments): "…", '…' and `…`.
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    // Label matchers: {job="x", le=~"…"}.
    .replace(/\{[^}]*\}/g, ' ')
    // Label lists of aggregations and vector matching, with their keyword: by (a, b), ignoring(code),
    // group_left (x). `sum by (x) (…)` is then `sum (…)`: a function.
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // Range and subquery selectors: [10m], [1h:5m].
    .replace(/\[[^\]]*\]/g, ' ');
  const names = new Set<string>();
  // An identifier not preceded by a digit or dot (so 1e3 or 0.5 are not read as names).
  for (const m of text.matchAll(/(?<![\w.:])[a-zA-Z_:][\w:]*/g)) {
    const rest = text.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** The registry name a series name belongs to: a histogram's or summary's _bucket/_sum/_count series are its own. */
export function baseMetricName(name: string, histograms: ReadonlySet<string>): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && histograms.has(m[1]!) ? m[1]! : name;
}
