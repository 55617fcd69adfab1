import { readFileSync } from 'node:fs';
import type { AnalyticsBrowserSettings, InitOptions } from '@segment/analytics-next';
import { describe, expect, it } from 'vitest';

/**
 * The README's analytics-next snippet, checked against the library's own types (the typecheck
 * fails if an option name is wrong) and kept in step with the README's text. The browser test
 * runs the library against Tagwarden for real.
 */
const writeKey = 'any-write-key';
const settings = { writeKey, cdnSettings: { integrations: { 'Segment.io': { apiKey: writeKey } }, metrics: { sampleRate: 0 } } } satisfies AnalyticsBrowserSettings;
const options = { integrations: { 'Segment.io': { apiHost: 'tags.example.com/v1', protocol: 'https' } } } satisfies InitOptions;

describe('README: pointing clients at Tagwarden', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('shows the analytics-next options the library defines', () => {
    expect(readme).toContain(`{ writeKey, cdnSettings: { integrations: { 'Segment.io': { apiKey: writeKey } }, metrics: { sampleRate: 0 } } },`);
    expect(readme).toContain(`{ integrations: { 'Segment.io': { apiHost: '${options.integrations['Segment.io'].apiHost}', protocol: '${options.integrations['Segment.io'].protocol}' } } },`);
    expect(settings.cdnSettings.metrics.sampleRate).toBe(0);
  });

  it('points gtag.js and the pixel at the routes Tagwarden serves', () => {
    expect(readme).toContain(`gtag('config', 'G-XXXXXXX', { server_container_url: 'https://tags.example.com' });`);
    expect(readme).toContain('<script async src="https://tags.example.com/gtag/js?id=G-XXXXXXX"></script>');
    // With its page URL (dl): meta-capi needs event_source_url, so a hit without it is dropped.
    expect(readme).toContain('src="https://tags.example.com/tr?id=1234567890&ev=PageView&noscript=1&dl=https%3A%2F%2Fshop.example.com%2F"');
  });
});
