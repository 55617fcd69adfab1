/**
 * The `auth` part of a template (docs/templates.md, "auth"): how delivery authorises the vendor
 * request before it sends it. One kind today, `oauth2` with the refresh-token grant (RFC 6749 §6,
 * https://www.rfc-editor.org/rfc/rfc6749#section-6): a long-lived refresh token from the
 * destination's settings is exchanged at the token endpoint for short-lived access tokens, sent
 * as `authorization: Bearer <token>` (RFC 6750 §2.1). Google Ads uses it; so do other OAuth vendors.
 *
 * Values are a literal string or `{"@setting": name}`, nothing else: credentials come from settings,
 * and an auth value is read once per destination, never from the event.
 */
import { z } from 'zod';

const settingName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'setting names are identifiers').describe('Name of a setting declared in settings');

export const AuthValueSchema = z
  .union([z.string().min(1).max(2048), z.object({ '@setting': settingName }).strict()])
  .describe('A literal string or {"@setting": name}: the value of a declared setting');

export const OAuth2Schema = z
  .object({
    tokenUrl: AuthValueSchema.describe('Token endpoint (absolute https URL; http only to a loopback host, for tests). A setting with a default lets a destination override it'),
    grant: z.literal('refresh_token').describe('The OAuth 2.0 grant: "refresh_token" (RFC 6749 §6)'),
    clientId: AuthValueSchema.describe('OAuth client id'),
    clientSecret: AuthValueSchema.describe('OAuth client secret: a secret setting'),
    refreshToken: AuthValueSchema.describe('Refresh token: a secret setting'),
    scope: AuthValueSchema.optional().describe('Scope to ask for (space-separated); omitted = the refresh token\'s own'),
    clientAuth: z
      .enum(['body', 'basic'])
      .default('body')
      .describe('How the client authenticates to the token endpoint: "body" (client_id and client_secret form fields) or "basic" (HTTP Basic, RFC 6749 §2.3.1)'),
    expiryMarginSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(60)
      .describe('An access token is renewed this long before its expires_in runs out, so none expires on the way'),
  })
  .strict()
  .describe('OAuth 2.0 refresh-token grant: delivery exchanges the refresh token for an access token, caches it until shortly before it expires, and sends it as authorization: Bearer');

export const AuthSchema = z
  .object({ oauth2: OAuth2Schema })
  .strict()
  .describe('How delivery authorises the vendor request (docs/templates.md, "auth")');

export type AuthDefinition = z.output<typeof AuthSchema>;
export type OAuth2Definition = z.output<typeof OAuth2Schema>;
export type AuthValue = z.output<typeof AuthValueSchema>;

/** The fields of `oauth2` that hold credentials: they must come from secret settings. */
export const SECRET_FIELDS = ['clientSecret', 'refreshToken'] as const;
const VALUE_FIELDS = ['tokenUrl', 'clientId', 'clientSecret', 'refreshToken', 'scope'] as const;

export interface AuthIssue {
  path: (string | number)[];
  message: string;
}

interface DeclaredSetting {
  type: string;
  secret?: boolean | undefined;
  default?: unknown;
}

/** Why a token URL is unusable, or undefined. Plain http only to a loopback host (a fake endpoint in tests). */
export function tokenUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not an absolute URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.hash !== '') return 'must not have a fragment';
  if (url.protocol === 'https:') return undefined;
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol === 'http:' && loopback) return undefined;
  return 'must be an https URL (http only to a loopback host): it carries the refresh token';
}

/**
 * What the schema cannot see alone: a `@setting` names a declared string setting, credentials come
 * from secret settings (never a literal in a template file, and always masked), a literal token
 * URL is usable, and the template does not also set the authorization header itself.
 */
export function authIssues(auth: AuthDefinition, settings: Readonly<Record<string, DeclaredSetting>>, headers: readonly string[]): AuthIssue[] {
  const issues: AuthIssue[] = [];
  const oauth2 = auth.oauth2;
  for (const field of VALUE_FIELDS) {
    const value = oauth2[field];
    if (value === undefined) continue;
    const path = ['auth', 'oauth2', field];
    if (typeof value === 'string') {
      if ((SECRET_FIELDS as readonly string[]).includes(field)) issues.push({ path, message: `${field} must be {"@setting": name} of a secret setting, not a literal` });
      if (field === 'tokenUrl') {
        const problem = tokenUrlProblem(value);
        if (problem !== undefined) issues.push({ path, message: problem });
      }
      continue;
    }
    const name = value['@setting'];
    const declared = settings[name];
    if (declared === undefined) {
      issues.push({ path: [...path, '@setting'], message: `unknown setting "${name}" (declare it in settings)` });
      continue;
    }
    if (declared.type !== 'string') issues.push({ path: [...path, '@setting'], message: `setting "${name}" must be of type string` });
    if ((SECRET_FIELDS as readonly string[]).includes(field) && declared.secret !== true) {
      issues.push({ path: [...path, '@setting'], message: `setting "${name}" holds a credential: mark it "secret": true` });
    }
    if (field === 'tokenUrl' && typeof declared.default === 'string') {
      const problem = tokenUrlProblem(declared.default);
      if (problem !== undefined) issues.push({ path: ['settings', name, 'default'], message: problem });
    }
  }
  if (headers.includes('authorization')) issues.push({ path: ['request', 'headers', 'authorization'], message: 'the auth step sets the authorization header; the template must not' });
  return issues;
}
