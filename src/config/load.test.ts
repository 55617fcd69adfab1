import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { configJsonSchema } from './json-schema.ts';
import { withReference } from './reference.ts';
import { configPathFrom, loadConfigFile, parseConfig } from './load.ts';

const minimal = { site: { id: 'shop', categories: { advertising: {} } } };

function issuesOf(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(raw, { env });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message.split('\n').slice(1);
  }
  return [];
}

describe('config', () => {
  it('applies defaults and freezes the result', () => {
    const c = parseConfig(minimal, { env: {} });
    expect(c.server.port).toBe(8080);
    expect(c.site.dataControlMode).toBe('opt-in');
    expect(c.delivery.maxAttempts).toBe(300);
    expect(c.delivery.maxTotalMs).toBe(4 * 3_600_000);
    expect(c.delivery.journal.enabled).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.server)).toBe(true);
  });

  it('reports every problem at once, with its path', () => {
    const issues = issuesOf({
      site: { id: 'shop', dataControlMode: 'sometimes', categories: { advertising: {} } },
      server: { port: 'eighty', bogus: 1 },
      destinations: [
        { id: 'meta', template: 'meta-capi', consent: { categories: ['ads'], whenUnknwon: 'hold' } },
        { id: 'meta', template: 'ga4' },
        { template: 'ga4' },
      ],
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^site\.dataControlMode: /),
        expect.stringMatching(/^server\.port: /),
        'server.bogus: unknown key',
        'destinations[0].consent.whenUnknwon: unknown key',
        'destinations[2].id: required',
      ]),
    );
  });

  it('a __proto__ key is reported as unknown, never turned into a prototype', () => {
    const raw = JSON.parse('{"site":{"id":"shop"},"server":{"__proto__":{"port":1}}}') as unknown;
    expect(issuesOf(raw)).toEqual(['server.__proto__: unknown key']);
  });

  it('checks cross-field rules: duplicate ids, unknown categories, explain without a key', () => {
    const issues = issuesOf({
      ...minimal,
      debug: { explain: true },
      destinations: [
        { id: 'meta', template: 'meta-capi', consent: { categories: ['ads'] } },
        { id: 'meta', template: 'ga4' },
      ],
    });
    expect(issues).toEqual([
      'destinations[0].consent.categories[0]: unknown category "ads" (site.categories has: advertising)',
      'destinations[1].id: duplicate destination id (also destinations[0])',
      'debug.adminKey: required when debug.explain is true',
    ]);
  });

  it('server.workers: 1 to 64 or auto; several workers need a store they can share', () => {
    expect(issuesOf({ ...minimal, server: { workers: 'auto' } })).toEqual([]);
    expect(issuesOf({ ...minimal, server: { workers: 64 } })).toEqual([]);
    expect(issuesOf({ ...minimal, server: { workers: 0 } })).toHaveLength(1);
    expect(issuesOf({ ...minimal, server: { workers: 65 } })).toHaveLength(1);
    expect(issuesOf({ ...minimal, server: { workers: 2 }, store: { url: 'sqlite::memory:' } })).toEqual([
      'store.url: sqlite::memory: is one private database per process: with server.workers above 1 use a file (sqlite:./data/tagwarden.db) or PostgreSQL',
    ]);
    expect(issuesOf({ ...minimal, server: { workers: 1 }, store: { url: 'sqlite::memory:' } })).toEqual([]);
  });

  it('the dashboard asked for by name needs the admin key; by default it is quietly off without one', () => {
    expect(issuesOf({ ...minimal, ui: { enabled: true } })).toEqual(["debug.adminKey: required when ui.enabled is true (the dashboard's login key)"]);
    expect(issuesOf({ ...minimal, ui: { sessionTtlSeconds: 600 } })).toEqual([]);
    expect(issuesOf({ ...minimal, ui: { enabled: true }, debug: { adminKey: 'k'.repeat(16) } })).toEqual([]);
  });

  it('config with a schema error and an unknown category reports both', () => {
    expect(
      issuesOf({
        site: { id: 'shop', dataControlMode: 'sometimes', categories: { advertising: {} } },
        server: { port: 'eighty' },
        upstream: { verify: { url: 'https://v.test/{visitorId}', categories: { marketing: 'ads' } } },
        identity: { cookie: { enabled: true } },
        debug: { explain: true },
        destinations: [
          { id: 'meta', template: 'meta-capi', consent: { categories: ['ads'], whenUnknwon: 'hold' } },
          { id: 'meta', template: 'ga4' },
        ],
      }),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^site\.dataControlMode: /),
        expect.stringMatching(/^server\.port: /),
        'destinations[0].consent.whenUnknwon: unknown key',
        'destinations[0].consent.categories[0]: unknown category "ads" (site.categories has: advertising)',
        'destinations[1].id: duplicate destination id (also destinations[0])',
        'upstream.verify.categories.marketing: unknown category "ads" (site.categories has: advertising)',
        'identity.cookie.category: unknown category "functional" (site.categories has: advertising)',
        'debug.adminKey: required when debug.explain is true',
      ]),
    );
  });

  it('checks both verify category maps (upstream.verify and api.verify) against site.categories', () => {
    const issues = issuesOf({
      ...minimal,
      upstream: { verify: { url: 'https://v.test/{visitorId}', categories: { marketing: 'ads' } } },
      api: { verify: { categories: { ads: 'adverts' } } },
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        'upstream.verify.categories.marketing: unknown category "ads" (site.categories has: advertising)',
        'api.verify.categories.ads: unknown category "adverts" (site.categories has: advertising)',
      ]),
    );
  });

  it('skips a cross-field rule whose own fields are malformed (the schema reports those)', () => {
    expect(issuesOf({ site: { id: 'shop', categories: 'nope' }, destinations: [{ id: 'm', template: 'webhook', consent: { categories: ['ads'] } }] })).toEqual([
      expect.stringMatching(/^site\.categories: /),
    ]);
  });

  it('expands ${VAR} and ${VAR:-default}, and reports unset variables with their path', () => {
    const c = parseConfig(
      { ...minimal, destinations: [{ id: 'w', template: 'webhook', settings: { url: '${HOOK}', token: 'x${EMPTY:-}y', lit: '$${NOPE}' } }] },
      { env: { HOOK: 'https://h.test/' } },
    );
    expect(c.destinations[0]!.settings).toEqual({ url: 'https://h.test/', token: 'xy', lit: '${NOPE}' });
    expect(issuesOf({ ...minimal, destinations: [{ id: 'w', template: 'webhook', settings: { url: '${HOOK}' } }] })).toEqual([
      'destinations[0].settings.url: environment variable HOOK is not set (write ${HOOK:-} to allow it empty)',
    ]);
  });

  it('runs extra checks even when the schema fails, so every problem shows', () => {
    try {
      parseConfig({ site: {} }, { env: {}, extraChecks: () => [{ path: ['destinations', 0, 'settings', 'pixelId'], message: 'required' }] });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toContain('site.id: required');
      expect((e as Error).message).toContain('destinations[0].settings.pixelId: required');
    }
  });

  it('PORT from the environment overrides server.port (Cloud Run, Heroku); a bad PORT is reported', () => {
    expect(parseConfig(minimal, { env: { PORT: '3000' } }).server.port).toBe(3000);
    expect(parseConfig({ ...minimal, server: { port: 9000 } }, { env: { PORT: '0' } }).server.port).toBe(0);
    expect(parseConfig({ ...minimal, server: { port: 9000 } }, { env: { PORT: '' } }).server.port).toBe(9000);
    expect(parseConfig({ ...minimal, server: { port: 9000 } }, { env: {} }).server.port).toBe(9000);
    for (const bad of ['http', '70000', '-1', '80.5', ' 80']) {
      expect(issuesOf(minimal, { PORT: bad })).toEqual([`server.port: the PORT environment variable (${JSON.stringify(bad)}) is not a port number (0–65535)`]);
    }
  });

  it('loads YAML and JSON files, and names the file when it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-config-'));
    writeFileSync(join(dir, 'a.yaml'), 'site:\n  id: shop\n');
    writeFileSync(join(dir, 'a.json'), JSON.stringify(minimal));
    writeFileSync(join(dir, 'bad.yaml'), 'site: [\n');
    expect(loadConfigFile(join(dir, 'a.yaml'), { env: {} }).site.id).toBe('shop');
    expect(loadConfigFile(join(dir, 'a.json'), { env: {} }).site.id).toBe('shop');
    expect(() => loadConfigFile(join(dir, 'bad.yaml'), { env: {} })).toThrow(/cannot parse configuration .*bad\.yaml/);
    expect(() => loadConfigFile(join(dir, 'none.yaml'), { env: {} })).toThrow(/cannot read configuration/);
  });

  it('finds the config path from --config, then TAGWARDEN_CONFIG, then the default', () => {
    expect(configPathFrom(['--config', 'x.yaml'], { TAGWARDEN_CONFIG: 'y.yaml' })).toBe('x.yaml');
    expect(configPathFrom(['--config=z.yaml'], {})).toBe('z.yaml');
    expect(configPathFrom([], { TAGWARDEN_CONFIG: 'y.yaml' })).toBe('y.yaml');
    expect(configPathFrom([], {})).toBe('config/tagwarden.yaml');
    expect(() => configPathFrom(['--config'], {})).toThrow(ConfigError);
  });

  it('docs/configuration.md carries the generated reference (run `npm run schema`)', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toBe(withReference(doc));
  });

  it('the committed JSON Schema matches the zod schema (run `npm run schema`)', () => {
    const committed: unknown = JSON.parse(readFileSync(new URL('../../config/tagwarden.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(configJsonSchema());
  });
});
