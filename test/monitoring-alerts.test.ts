import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTagwarden, testConfig } from './helpers.ts';
import { baseMetricName, promqlMetricNames } from './promql-names.ts';

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules = (parse(readFileSync('docs/alerts/tagwarden.rules.yml', 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const doc = readFileSync('docs/monitoring.md', 'utf8');
/** Series Prometheus itself makes for every target (https://prometheus.io/docs/concepts/jobs_instances/). */
const SYNTHETIC = new Set(['up']);

describe('promqlMetricNames', () => {
  it('keeps metric names, not functions, keywords, label names, strings or numbers', () => {
    expect(promqlMetricNames('up{job="tagwarden"} == 0')).toEqual(['up']);
    expect(promqlMetricNames('sum by (destination, le) (rate(a_bucket{x=~"y|z"}[10m])) > 1e3')).toEqual(['a_bucket']);
    expect(promqlMetricNames('histogram_quantile(0.95, sum without(instance) (rate(h_bucket[5m:1m])))')).toEqual(['h_bucket']);
    expect(promqlMetricNames('a / ignoring(code) group_left (client) b and on(x) c unless bool d offset 5m')).toEqual(['a', 'b', 'c', 'd']);
    expect(promqlMetricNames("label_replace(m, 'dst', '$1', 'src', '(.*)') > 0.5")).toEqual(['m']);
    expect(promqlMetricNames('max by(instance) (q / cap) > Inf')).toEqual(['q', 'cap']);
    expect(promqlMetricNames('ns:recorded:rate5m > 0')).toEqual(['ns:recorded:rate5m']);
  });

  it("maps a histogram's series to its name, and leaves other names alone", () => {
    const h = new Set(['d_seconds']);
    expect(baseMetricName('d_seconds_bucket', h)).toBe('d_seconds');
    expect(baseMetricName('d_seconds_count', h)).toBe('d_seconds');
    expect(baseMetricName('x_count', h)).toBe('x_count');
  });
});

describe('docs/alerts/tagwarden.rules.yml and docs/monitoring.md', () => {
  let types: Map<string, string>;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const tw = await startTagwarden(
      testConfig({
        site: { id: 'shop', dataControlMode: 'opt-in', categories: { analytics: {} } },
        destinations: [{ id: 'hook', template: 'webhook', settings: { url: 'http://127.0.0.1:9/hook' }, consent: { categories: ['analytics'] } }],
      }),
    );
    close = tw.close;
    const text = await (await fetch(`${tw.url}/metrics`)).text();
    types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  });
  afterAll(async () => close());

  it('every rule is an alert with an expression, a for, a severity and a summary', () => {
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const r of rules) {
      expect(r.alert, r.expr).toMatch(/^Tagwarden[A-Za-z]+$/);
      expect(r.for).toMatch(/^\d+[smh]$/);
      expect(r.labels?.severity).toMatch(/^(critical|warning|info)$/);
      expect(r.annotations?.summary).toBeTruthy();
    }
  });

  it('every metric an alert reads is in the registry', () => {
    const histograms = new Set([...types].filter(([, t]) => t === 'histogram' || t === 'summary').map(([n]) => n));
    for (const r of rules) {
      const names = promqlMetricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) {
        const base = baseMetricName(n, histograms);
        expect(SYNTHETIC.has(base) || types.has(base), `${r.alert}: ${n}`).toBe(true);
      }
    }
  });

  it('docs/monitoring.md names every tagwarden_* metric the registry has', () => {
    const missing = [...types.keys()].filter((n) => n.startsWith('tagwarden_') && !doc.includes(`\`${n}\``));
    expect(missing).toEqual([]);
  });
});
