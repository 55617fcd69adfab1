import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../errors.ts';
import { bindDestination } from '../bind.ts';
import { compileTemplate } from '../load.ts';

const settings = {
  tokenUrl: { type: 'string', default: 'https://oauth.example/token', description: 'token endpoint' },
  clientId: { type: 'string', required: true, description: 'client' },
  clientSecret: { type: 'string', required: true, secret: true, description: 'secret' },
  refreshToken: { type: 'string', required: true, secret: true, description: 'refresh token' },
};
const oauth2 = {
  tokenUrl: { '@setting': 'tokenUrl' },
  grant: 'refresh_token',
  clientId: { '@setting': 'clientId' },
  clientSecret: { '@setting': 'clientSecret' },
  refreshToken: { '@setting': 'refreshToken' },
};

function template(over: { settings?: unknown; oauth2?: unknown; headers?: unknown } = {}) {
  return {
    id: 'oauth-vendor',
    name: 'OAuth vendor',
    version: 1,
    description: 'test template',
    settings: over.settings ?? settings,
    auth: { oauth2: over.oauth2 ?? oauth2 },
    request: { method: 'POST', url: 'https://api.example.com/x', ...(over.headers === undefined ? {} : { headers: over.headers }) },
    mappings: [{ event: { name: { '@path': '$.event' } } }],
  };
}

const messages = (raw: unknown) => compileTemplate(raw).issues.map((i) => `${i.path}: ${i.message}`);
const given = { clientId: 'cid', clientSecret: 'cs', refreshToken: 'rt' };

describe('template auth.oauth2', () => {
  test('a valid declaration loads and binds to the destination credentials', () => {
    const result = compileTemplate(template());
    expect(result.issues).toEqual([]);
    const bound = bindDestination({ id: 'v', template: result.template!, settings: given });
    expect(bound.auth).toMatchObject({ kind: 'oauth2', tokenUrl: 'https://oauth.example/token', clientId: 'cid', clientSecret: 'cs', refreshToken: 'rt', clientAuth: 'body', marginMs: 60_000 });
    expect(bound.auth!.cacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(bound.secretValues.sort()).toEqual(['cs', 'rt']);
    // Same credentials, same cache entry; another refresh token, another.
    expect(bindDestination({ id: 'w', template: result.template!, settings: given }).auth!.cacheKey).toBe(bound.auth!.cacheKey);
    expect(bindDestination({ id: 'v', template: result.template!, settings: { ...given, refreshToken: 'other' } }).auth!.cacheKey).not.toBe(bound.auth!.cacheKey);
  });

  test('credentials must come from secret settings, and settings must be declared strings', () => {
    expect(messages(template({ oauth2: { ...oauth2, refreshToken: 'literal-token' } }))).toEqual([
      'auth.oauth2.refreshToken: refreshToken must be {"@setting": name} of a secret setting, not a literal',
    ]);
    expect(messages(template({ settings: { ...settings, clientSecret: { type: 'string', description: 'not secret' } } }))).toEqual([
      'auth.oauth2.clientSecret.@setting: setting "clientSecret" holds a credential: mark it "secret": true',
    ]);
    expect(messages(template({ oauth2: { ...oauth2, clientId: { '@setting': 'nope' } } }))).toEqual([
      'auth.oauth2.clientId.@setting: unknown setting "nope" (declare it in settings)',
    ]);
  });

  test('the token URL is https (http only to loopback), and the template does not set authorization itself', () => {
    expect(messages(template({ oauth2: { ...oauth2, tokenUrl: 'http://oauth.example/token' } }))[0]).toMatch(/must be an https URL/);
    expect(messages(template({ oauth2: { ...oauth2, tokenUrl: 'http://127.0.0.1:8080/token' } }))).toEqual([]);
    expect(messages(template({ settings: { ...settings, tokenUrl: { type: 'string', default: 'ftp://x/token', description: 't' } } }))[0]).toMatch(/settings\.tokenUrl\.default: must be an https URL/);
    expect(messages(template({ headers: { authorization: 'Bearer x' } }))).toEqual(['request.headers.authorization: the auth step sets the authorization header; the template must not']);
    expect(messages(template({ oauth2: { ...oauth2, grant: 'password' } }))[0]).toMatch(/^auth\.oauth2\.grant:/);
  });

  test('binding fails on an unusable overridden token URL, without quoting it', () => {
    const t = compileTemplate(template()).template!;
    expect(() => bindDestination({ id: 'v', template: t, settings: { ...given, tokenUrl: 'http://evil.example/steal' } })).toThrow(ConfigError);
    try {
      bindDestination({ id: 'v', template: t, settings: { ...given, tokenUrl: 'http://evil.example/steal' } });
    } catch (err) {
      expect((err as Error).message).not.toContain('evil');
    }
    expect(() => bindDestination({ id: 'v', template: t, settings: { clientId: 'cid', clientSecret: 'cs' } })).toThrow(/refreshToken: required/);
  });
});
