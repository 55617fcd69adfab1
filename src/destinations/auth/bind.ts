/**
 * Binding a template's `auth` to one destination's settings (schema.ts): the resolved credentials
 * delivery's auth step (src/delivery/oauth2.ts) needs. Pure; the exchange itself is delivery's.
 */
import { createHash } from 'node:crypto';
import type { AuthDefinition, AuthValue } from './schema.ts';
import { tokenUrlProblem } from './schema.ts';

export interface BoundOAuth2 {
  kind: 'oauth2';
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  scope?: string;
  clientAuth: 'body' | 'basic';
  /** An access token is renewed this long before it expires. */
  marginMs: number;
  /**
   * Identifies the credentials (a SHA-256 of endpoint, client and refresh token), so a reloaded
   * destination with the same settings keeps its cached token, and changed ones get a new one.
   * Never a credential itself: it may appear where the cache is inspected.
   */
  cacheKey: string;
}

export type BoundAuth = BoundOAuth2;

type SettingValue = string | number | boolean;

/**
 * The destination's credentials, or the issue (path under `auth.oauth2`) that prevents binding:
 * a setting the template reads but the destination left unset, or an unusable token URL. Issue
 * messages never quote a value.
 */
export function bindAuth(auth: AuthDefinition, settings: Readonly<Record<string, SettingValue>>): { auth: BoundAuth } | { issue: string } {
  const o = auth.oauth2;
  const read = (field: string, value: AuthValue): string | { issue: string } => {
    if (typeof value === 'string') return value;
    const v = settings[value['@setting']];
    if (v === undefined || v === '') return { issue: `auth.oauth2.${field}: setting "${value['@setting']}" is not set` };
    return String(v);
  };
  const fields: Record<string, string> = {};
  for (const field of ['tokenUrl', 'clientId', 'clientSecret', 'refreshToken'] as const) {
    const v = read(field, o[field]);
    if (typeof v !== 'string') return v;
    fields[field] = v;
  }
  const problem = tokenUrlProblem(fields.tokenUrl!);
  if (problem !== undefined) return { issue: `auth.oauth2.tokenUrl: ${problem}` };
  let scope: string | undefined;
  if (o.scope !== undefined) {
    const v = read('scope', o.scope);
    if (typeof v !== 'string') return v;
    scope = v;
  }
  const cacheKey = createHash('sha256').update(JSON.stringify([fields.tokenUrl, fields.clientId, fields.refreshToken, scope ?? ''])).digest('hex');
  const bound: BoundOAuth2 = {
    kind: 'oauth2',
    tokenUrl: fields.tokenUrl!,
    clientId: fields.clientId!,
    clientSecret: fields.clientSecret!,
    refreshToken: fields.refreshToken!,
    clientAuth: o.clientAuth,
    marginMs: o.expiryMarginSeconds * 1000,
    cacheKey,
  };
  if (scope !== undefined) bound.scope = scope;
  return { auth: bound };
}
