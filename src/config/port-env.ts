import type { ConfigIssue } from './issues.ts';

/**
 * `PORT` from the environment wins over `server.port`: Cloud Run, Heroku and most platforms tell
 * the process which port to listen on this way and route traffic only there
 * (https://cloud.google.com/run/docs/container-contract#port,
 * https://devcenter.heroku.com/articles/dynos#web-dynos). Applied to the expanded raw config, before
 * the schema, so the port is validated like any other value. Unset or empty: the config's port.
 */
export function withPortFromEnv(raw: unknown, env: Readonly<Record<string, string | undefined>>, issues: ConfigIssue[]): unknown {
  const text = env.PORT;
  if (text === undefined || text === '') return raw;
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    issues.push({ path: ['server', 'port'], message: `the PORT environment variable (${JSON.stringify(text.slice(0, 32))}) is not a port number (0–65535)` });
    return raw;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const server = (raw as { server?: unknown }).server ?? {};
  // A server section that is not an object is the schema's to report; PORT cannot fix it.
  if (server === null || typeof server !== 'object' || Array.isArray(server)) return raw;
  return { ...raw, server: { ...server, port } };
}
